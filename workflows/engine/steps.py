"""Move a step from outside the engine: a person answered, a guardian was overruled, a child run
or a timer ended. Each service is one transaction under the run's lock: it checks the step run
is still in the state its caller saw (WAITING, on the reference the caller quotes), or raises
Conflict and changes nothing; what comes next is dispatched when it commits.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.utils import timezone

from config.errors import Conflict, NotFound
from workflows.engine.finish import run_settle
from workflows.engine.progress import (
    HOLD_ATTEMPT,
    attempt_failed,
    attempt_skipped,
    attempt_succeeded,
    executions_start,
    step_run_new,
    steps_start,
)
from workflows.engine.transitions import run_transition, step_run_transition
from workflows.engine.unit import Unit, step_unit
from workflows.models import Run, RunStatus, RunStep, StepRun, StepStatus


def step_resume(*, step_run_id: int, ref: str, output=None, by: str = "") -> None:
    """Finish a waiting step run with `output` (None: the output its Wait carried)."""
    with _waiting(step_run_id, ref) as (unit, step_run):
        result = step_run.output if output is None else output
        attempt_succeeded(unit, step_run, result, **_by(by))


def step_override(*, step_run_id: int, ref: str, output, by: str = "") -> None:
    """Finish a waiting step run with `output` in place of what it would have produced."""
    with _waiting(step_run_id, ref) as (unit, step_run):
        attempt_succeeded(unit, step_run, output, overridden=True, **_by(by))


def step_fail(
    *, step_run_id: int, ref: str, message: str, code: str = "failed_from_outside", by: str = ""
) -> None:
    """Fail a waiting step run, and its step (no retry): the run fails."""
    with _waiting(step_run_id, ref) as (unit, step_run):
        attempt_failed(unit, step_run, message, code=code, retryable=False, **_by(by))


def step_skip(*, step_run_id: int, ref: str, reason: str, by: str = "") -> None:
    """Skip a waiting step run; its dependents go on as after any skipped step."""
    with _waiting(step_run_id, ref) as (unit, step_run):
        attempt_skipped(unit, step_run, reason, **_by(by))


def step_retry(*, step_run_id: int, ref: str, by: str = "") -> int:
    """Run a waiting step again, as a new attempt (a step a gate held: its first); return the
    new step run's id (None: the step finished at once, an empty foreach)."""
    with _waiting(step_run_id, ref) as (unit, step_run):
        step_run_transition(unit, step_run, StepStatus.CANCELLED, reason="retried", **_by(by))
        step = unit.spec.step(step_run.step_id)
        run_step = RunStep.objects.get(pk=step_run.run_step_id)
        if step_run.attempt == HOLD_ATTEMPT:
            if executions_start(unit, run_step, step):  # an empty foreach: done at once
                steps_start(unit, unit.spec.graph.dependents[step.id])
            first = StepRun.objects.filter(run_step=run_step, attempt=1, iteration=0)
            return first.values_list("pk", flat=True).first()
        retried = step_run_new(
            unit, run_step, step, iteration=step_run.iteration, attempt=step_run.attempt + 1
        )
        return retried.pk


def step_run_lock(step_run_id: int) -> None:
    """Hold the step run's row lock to the end of the caller's transaction. A plug-in that
    writes run events before it moves a waiting step takes it first, so that its transaction,
    like the engine's, locks the step run before the run (a late outcome of the same step run
    does: the other order deadlocks with it)."""
    list(StepRun.objects.select_for_update().filter(pk=step_run_id).values_list("pk", flat=True))


@contextmanager
def _waiting(step_run_id: int, ref: str) -> Iterator[tuple[Unit, StepRun]]:
    run_id = StepRun.objects.filter(pk=step_run_id).values_list("run_id", flat=True).first()
    if run_id is None:
        raise NotFound(f"No step run {step_run_id}.")
    with step_unit(run_id, step_run_id, lock_run=True) as (unit, step_run):
        if unit.run.is_terminal:
            raise Conflict(f"Run {run_id} is already {unit.run.status}.", code="run_finished")
        if step_run.status != StepStatus.WAITING or step_run.wait_ref != str(ref):
            raise Conflict(
                f"Step run {step_run_id} ({step_run.step_id}) is {step_run.status}"
                + (f" on '{step_run.wait_ref}'" if step_run.status == StepStatus.WAITING else "")
                + f", not waiting on '{ref}'.",
                code="step_moved_on",
                details={"status": step_run.status},
            )
        if unit.run.status == RunStatus.WAITING:
            run_transition(unit, RunStatus.RUNNING)
        yield unit, step_run
        run_settle(unit)


def _by(by: str) -> dict:
    return {"by": by} if by else {}


def step_run_wake(*, run_id, step_run_id: int) -> bool:
    """Finish a waiting step run whose timer is due or whose child run has ended."""
    with step_unit(run_id, step_run_id, lock_run=True) as (unit, step_run):
        if step_run.status != StepStatus.WAITING or unit.run.is_terminal:
            return False
        if step_run.wake_at is not None:
            if step_run.wake_at > timezone.now():
                return False
            outcome = (attempt_succeeded, step_run.output)
        else:
            child = Run.objects.filter(parent_step_run=step_run).first()
            if child is None or not child.is_terminal:
                return False
            if child.status == RunStatus.COMPLETED:
                outcome = (attempt_succeeded, child.result)
            else:
                error = f"child run {child.pk} ended {child.status}: {child.error}".rstrip(": ")
                outcome = (attempt_failed, error)
        if unit.run.status == RunStatus.WAITING:
            run_transition(unit, RunStatus.RUNNING)
        record, value = outcome
        record(unit, step_run, value)
        run_settle(unit)
        return True
