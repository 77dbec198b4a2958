"""Build what templates and expressions of a step can read."""

from django.utils import timezone

from workflows.models import Run, RunStep
from workflows.spec import StepSpec, WorkflowSpec


def template_context(
    run: Run, spec: WorkflowSpec, step: StepSpec | None, *, reads=(), **extra
) -> dict:
    """inputs, state, ctx and the outputs of the steps this step reads (or all, for outputs),
    and of the steps in `reads` (what a gate's own expressions read)."""
    wanted = spec.graph.reads[step.id] if step is not None else spec.graph.steps.keys()
    wanted = wanted | set(reads) if reads else wanted
    rows = RunStep.objects.filter(run=run, step_id__in=list(wanted)).values_list(
        "step_id", "status", "output"
    )
    steps = {step_id: {"status": status, "output": output} for step_id, status, output in rows}
    ctx = {**run.ctx, "now": timezone.now().isoformat()}
    return {"inputs": run.inputs, "state": run.state, "ctx": ctx, "steps": steps, **extra}
