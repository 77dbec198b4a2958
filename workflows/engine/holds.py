"""Step runs that wait for someone: how they are parked, and the plug-ins told of it.

Three things park a step run: an executor's Wait (a person's task, a timer, a child run), a
gate's Escalate (before the step runs), and a failure of a step with `on_failure: escalate`
(after its retries). Each goes through `step_run_park`, which tells the handlers registered
with `step_waiting_register` in the same transaction, so what they open (an intervention) exists
exactly when the step waits. A reviewer (`review_register`) may park a step run that was about to
succeed, its output proposed for someone to confirm or correct.
"""

from workflows.engine.context import template_context
from workflows.engine.contract import Review, Wait, Waiting
from workflows.engine.plugin_events import event_writer
from workflows.engine.registry import reviewers, waiting_handlers
from workflows.engine.transitions import step_run_transition
from workflows.engine.unit import Unit
from workflows.models import StepRun, StepStatus

ESCALATED = "escalated"
_WAIT_FIELDS = ["output", "wake_at", "wait_reason", "wait_ref"]


def step_run_park(
    unit: Unit, step_run: StepRun, wait: Wait, *, message: str = "", details=None, fields=()
) -> None:
    """Move the step run to WAITING on `wait` and tell the waiting handlers."""
    step_run.wake_at, step_run.output = wait.wake_at, wait.output
    step_run.wait_reason, step_run.wait_ref = wait.reason, wait.ref
    payload = {"reason": wait.reason, "wait_ref": wait.ref}
    if wait.wake_at is not None:
        payload["wake_at"] = wait.wake_at.isoformat()
    if message:
        payload["message"] = message
    written = [*fields, *_WAIT_FIELDS]
    step_run_transition(unit, step_run, StepStatus.WAITING, fields=written, **payload)
    step = unit.spec.step(step_run.step_id)
    waiting = Waiting(
        run_id=str(unit.run.pk), step_run_id=step_run.pk, step=step,
        iteration=step_run.iteration, attempt=step_run.attempt, reason=wait.reason,
        ref=wait.ref, message=message, details=details or {}, output=wait.output,
        input=step_run.input,
        started_by_id=unit.run.started_by_id,
        context=lambda: template_context(unit.run, unit.spec, step), event=event_writer(unit),
    )  # fmt: skip
    for handler in waiting_handlers():
        handler(waiting)


def escalation_ref(step_run: StepRun) -> str:
    return f"escalation:{step_run.pk}"


def review_hold(unit: Unit, step_run: StepRun, output) -> Wait | None:
    """The first reviewer's Wait for this success, or None to let it count."""
    step = unit.spec.step(step_run.step_id)
    review = Review(
        run_id=str(unit.run.pk), step_run_id=step_run.pk, step=step,
        iteration=step_run.iteration, output=output, started_by_id=unit.run.started_by_id,
        context=lambda: template_context(unit.run, unit.spec, step), event=event_writer(unit),
    )  # fmt: skip
    for reviewer in reviewers():
        wait = reviewer(review)
        if wait is not None:
            return wait
    return None
