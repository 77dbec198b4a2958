"""End a run: complete it when every step is done, or abort it (FAILED, CANCELLED) with its steps
and child runs. Called with the Unit of a run-locked transaction (engine.unit)."""

from django.utils import timezone

from workflows import expressions
from workflows.engine.context import template_context
from workflows.engine.dispatch import resume_on_commit, revoke_on_commit
from workflows.engine.rows import row_update
from workflows.engine.transitions import run_transition, step_run_transition
from workflows.engine.unit import Unit, run_unit
from workflows.models import RUN_TERMINAL, STEP_ACTIVE, Run, RunStatus, RunStep, StepRun, StepStatus


def run_settle(unit: Unit) -> None:
    """Complete the run when every step is done; otherwise keep RUNNING/WAITING truthful
    (WAITING: no step run is pending or executing, so only something outside moves it on)."""
    unit.lock_run()  # the current counts
    run = unit.run
    if run.is_terminal:
        return
    if run.progress_done >= run.progress_total:
        _complete(unit)
    elif run.status == RunStatus.RUNNING and not run.steps_busy:
        run_transition(unit, RunStatus.WAITING)
    elif run.status == RunStatus.WAITING and run.steps_busy:
        run_transition(unit, RunStatus.RUNNING)


def _complete(unit: Unit) -> None:
    run, spec = unit.run, unit.spec
    context = template_context(run, spec, None)
    if spec.outputs is None:
        result = {step_id: step["output"] for step_id, step in context["steps"].items()}
    else:
        try:
            result = expressions.render(spec.outputs, context)
        except expressions.ExpressionError as exc:
            run_abort(unit, RunStatus.FAILED, reason=f"outputs: {exc}")
            return
    run.result = result
    row_update(run, ["result"])
    run_transition(unit, RunStatus.COMPLETED)
    notify_parent(unit)


def run_abort(unit: Unit, status: str, *, reason: str) -> None:
    """End the run as FAILED or CANCELLED: stop its steps, its children, tell its parent.

    Step runs that a delivery holds are skipped, not waited for (that delivery waits for this
    run's lock): it finds the run ended and cancels its step run itself (step_run_orphaned).
    """
    unit.lock_run()
    run = unit.run
    run.error = reason
    row_update(run, ["error"])
    run_transition(unit, status, reason=reason)
    active = list(
        StepRun.objects.select_for_update(skip_locked=True, of=("self",)).filter(
            run=run, status__in=STEP_ACTIVE
        )
    )
    running = [sr.task_id for sr in active if sr.status == StepStatus.RUNNING and sr.task_id]
    for step_run in active:
        step_run_transition(unit, step_run, StepStatus.CANCELLED, reason=reason)
    revoke_on_commit(running)
    # Skip steps a delivery holds too: it wrote its step before asking for the run's lock, which
    # this transaction holds; it finds the run ended and cancels the step itself.
    free = RunStep.objects.select_for_update(skip_locked=True, of=("self",)).filter(
        run=run, status=StepStatus.RUNNING
    )
    RunStep.objects.filter(pk__in=list(free.values_list("pk", flat=True))).update(
        status=StepStatus.CANCELLED, finished_at=timezone.now()
    )
    children = Run.objects.filter(parent_run=run).exclude(status__in=RUN_TERMINAL)
    for child_id in children.values_list("pk", flat=True):
        with run_unit(child_id) as child:
            if not child.run.is_terminal:
                run_abort(child, RunStatus.CANCELLED, reason=f"parent run {run.pk} ended: {status}")
    notify_parent(unit)


def step_run_orphaned(unit: Unit, step_run: StepRun) -> None:
    """Cancel an active step run of an ended run, and its step: one run_abort skipped because
    a delivery held it."""
    unit.lock_run()
    step_run_transition(unit, step_run, StepStatus.CANCELLED, reason="its run ended")
    RunStep.objects.filter(pk=step_run.run_step_id, status=StepStatus.RUNNING).update(
        status=StepStatus.CANCELLED, finished_at=timezone.now()
    )


def notify_parent(unit: Unit) -> None:
    run = unit.run
    if run.parent_step_run_id is not None:
        resume_on_commit(run.parent_run_id, run.parent_step_run_id)
