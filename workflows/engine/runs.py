"""Start and cancel runs."""

from decimal import Decimal

from django.db import IntegrityError, transaction

from accounts.audit import audit_record
from config.bounds import json_checked
from config.errors import Conflict, InvalidInput
from workflows import expressions
from workflows.engine.finish import run_abort, run_settle
from workflows.engine.progress import steps_start
from workflows.engine.transitions import run_transition
from workflows.engine.unit import new_run_unit, run_unit
from workflows.models import Run, RunStatus, StepRun, StepStatus, Workflow
from workflows.spec import inputs_resolve, spec_for_version

MAX_NESTING = 10


@transaction.atomic
def run_start(
    *,
    workflow: Workflow,
    inputs: dict,
    started_by=None,
    idempotency_key: str | None = None,
    ctx: dict | None = None,
    parent_step_run: StepRun | None = None,
    budget_usd=None,
) -> tuple[Run, bool]:
    """Start a run of the workflow's current version; return (run, created).

    The same idempotency key for the same workflow returns the existing run instead. The run may
    spend `budget_usd` (else the spec's `budget_usd`, a number or a template over the inputs;
    else no limit).
    """
    json_checked(idempotency_key, "idempotency_key")
    if idempotency_key:
        existing = Run.objects.filter(workflow=workflow, idempotency_key=idempotency_key).first()
        if existing is not None:
            return _same_request(existing, inputs), False
    if workflow.paused:
        raise Conflict(f"Workflow '{workflow.slug}' is paused.", code="workflow_paused")
    version = workflow.current_version
    if version is None:
        raise Conflict(f"Workflow '{workflow.slug}' has no published version.", code="no_version")
    spec = spec_for_version(version)
    resolved = inputs_resolve(spec, json_checked(inputs, "inputs"))
    if ctx is not None and not isinstance(ctx, dict):
        raise InvalidInput("ctx must be an object.", details={"ctx": "expected an object"})
    json_checked(ctx, "ctx")
    run = Run(
        budget_usd=_budget(spec, resolved, budget_usd),
        workflow=workflow,
        version=version,
        inputs=resolved,
        idempotency_key=idempotency_key or None,
        started_by=started_by,
        progress_total=len(spec.steps),
        parent_run_id=parent_step_run.run_id if parent_step_run else None,
        parent_step_run=parent_step_run,
    )
    run.ctx = {
        **(ctx or {}),
        "run_id": str(run.pk),
        "workflow": workflow.slug,
        "version": version.number,
        "started_by": started_by.get_username() if started_by else None,
        "depth": _child_depth(parent_step_run) if parent_step_run else 0,
    }
    try:
        with transaction.atomic():
            run.save(force_insert=True)
    except IntegrityError:
        if not idempotency_key:
            raise
        existing = Run.objects.get(workflow=workflow, idempotency_key=idempotency_key)
        return _same_request(existing, inputs), False
    created = {"workflow": workflow.slug, "version": version.number}
    if parent_step_run is not None:
        created["parent_run"] = str(parent_step_run.run_id)
    audit_record(actor=started_by, action="run.start", obj=run, after=created)
    with new_run_unit(run) as unit:
        unit.event("run.created", created)
        run_transition(unit, RunStatus.PLANNING)
        steps_start(unit, spec.graph.roots)
        if not run.is_terminal:
            run_transition(unit, RunStatus.RUNNING)
            run_settle(unit)
    return run, True


def _budget(spec, inputs: dict, given) -> Decimal | None:
    source = spec.budget_usd if given is None else given
    if isinstance(source, str):
        try:
            source = expressions.render(source, {"inputs": inputs})
        except expressions.ExpressionError as exc:
            raise InvalidInput(f"budget_usd: {exc}", details={"budget_usd": str(exc)}) from None
    if source is None:
        return None
    try:
        budget = Decimal(str(source))
    except ArithmeticError:
        budget = Decimal(-1)
    if isinstance(source, bool) or not budget.is_finite() or not 0 <= budget < 10**6:
        message = f"expected a number of USD from 0 to 1000000, got {source!r}"[:200]
        raise InvalidInput(f"budget_usd: {message}", details={"budget_usd": message})
    return budget.quantize(Decimal("0.000001"))


def _child_depth(parent_step_run: StepRun) -> int:
    """Lock the parent run (a parent before its children) and check it still wants this child.

    Holding the parent's lock until the child commits means a concurrent cancel of the parent
    either sees the child (and cancels it) or is seen here (and no child is made).
    """
    parent = Run.objects.select_for_update(of=("self",)).get(pk=parent_step_run.run_id)
    waiting_step = StepRun.objects.filter(pk=parent_step_run.pk, status=StepStatus.RUNNING)
    if parent.is_terminal or not waiting_step.exists():
        raise Conflict(
            f"Parent run {parent.pk} no longer waits for this step.", code="run_finished"
        )
    depth = parent.ctx.get("depth", 0) + 1
    if depth > MAX_NESTING:
        raise Conflict(
            f"Sub-workflows nest deeper than {MAX_NESTING} (a workflow calling itself?).",
            code="too_deep",
        )
    return depth


def _same_request(existing: Run, inputs) -> Run:
    """A retried start gets its run back; a different request under the same key is refused."""
    if not isinstance(inputs, dict) or any(
        existing.inputs.get(name, object()) != value for name, value in inputs.items()
    ):
        raise Conflict(
            "This idempotency key was used for a run with different inputs.",
            code="idempotency_key_reused",
            details={"idempotency_key": "already used with different inputs"},
        )
    return existing


def run_cancel(*, run_id, reason: str = "cancelled", by=None) -> Run:
    """Cancel the run, its pending and running steps and its child runs (409 when finished);
    `by` (a user) is audited."""
    with run_unit(run_id) as unit:
        if unit.run.is_terminal:
            raise Conflict(f"Run {unit.run.pk} is already {unit.run.status}.", code="run_finished")
        before = unit.run.status
        run_abort(unit, RunStatus.CANCELLED, reason=reason)
        audit_record(actor=by, action="run.cancel", obj=unit.run, before={"status": before},
                     after={"status": RunStatus.CANCELLED, "reason": reason})  # fmt: skip
        return unit.run
