"""Retry a failed run: an operator's second chance for a run that ended FAILED.

The run goes back to RUNNING (the one move out of an ended run, engine.transitions'
RUN_RETRY_TRANSITIONS) and every step the failure ended gets a fresh attempt: the step that
failed, and the steps the failure cancelled on other branches (without them the run could never
complete). An attempt is a new StepRun of the same iteration with the next attempt number, as a
retry under the step's `retry:` policy makes, so the earlier attempts stay as they were. The
steps that never ran because of the failure then start as their needs finish, as usual.
"""

from dataclasses import dataclass

from accounts.audit import audit_record
from config.errors import Conflict, NotFound
from workflows.engine.contract import Escalate
from workflows.engine.finish import run_settle
from workflows.engine.gates import gates_decide
from workflows.engine.holds import ESCALATED
from workflows.engine.progress import (
    FINISHED,
    gate_decision_apply,
    step_run_new,
    steps_start,
)
from workflows.engine.rows import row_update
from workflows.engine.transitions import run_transition
from workflows.engine.unit import Unit, run_unit
from workflows.models import STEP_ACTIVE, Run, RunStatus, RunStep, StepRun, StepStatus

ENDED_BY_FAILURE = (StepStatus.FAILED, StepStatus.CANCELLED)


def run_retry(*, run_id, by=None, step_id: str | None = None) -> Run:
    """Give a FAILED run's failed and cancelled steps a fresh attempt and set it RUNNING again;
    return the run. `step_id`: the caller retries from that step, which must be one that failed
    (the rest of the run resumes with it). Raises Conflict and changes nothing unless the run is
    FAILED (so a second retry finds it RUNNING) and a retry can change the outcome; NotFound
    for an unknown run. `by` (a user) is audited and named in the `run.retried` event."""
    if not Run.objects.filter(pk=run_id).exists():
        raise NotFound(f"No run '{run_id}'.")
    with run_unit(run_id) as unit:
        run = unit.run
        _check_retryable(run)
        ended = list(
            RunStep.objects.filter(run=run, status__in=ENDED_BY_FAILURE).order_by("started_at")
        )
        failed = [run_step.step_id for run_step in ended if run_step.status == StepStatus.FAILED]
        if step_id is not None and step_id not in failed:
            raise Conflict(
                f"Step '{step_id}' of run {run.pk} did not fail; it cannot be retried.",
                code="step_not_failed",
                details={"step": step_id, "failed": failed},
            )
        attempts = _latest_attempts(run, ended)
        _check_attempts_can_change(run, ended, attempts)
        retried = [run_step.step_id for run_step in ended]
        error, name = run.error, by.get_username() if by is not None else ""
        run_transition(unit, RunStatus.RUNNING, retry=True, reason="retried",
                       **({"by": name} if name else {}))  # fmt: skip
        unit.event("run.retried", {"by": name, "steps": retried, "step": step_id, "error": error})
        for run_step in ended:
            if not run.is_terminal:  # a step its gate blocks again fails the run again
                _step_again(unit, run_step, attempts.get(run_step.pk, {}))
        run_settle(unit)
        audit_record(actor=by, action="run.retry", obj=run,
                     before={"status": RunStatus.FAILED, "error": error},
                     after={"status": run.status, "steps": retried, "step": step_id})  # fmt: skip
        return run


def _check_retryable(run: Run) -> None:
    if run.status == RunStatus.CANCELLED:
        raise Conflict(
            f"Run {run.pk} was cancelled; a cancelled run is not retried: start a new one.",
            code="run_cancelled",
            details={"status": run.status},
        )
    if run.status != RunStatus.FAILED:
        raise Conflict(
            f"Run {run.pk} is {run.status}, not FAILED: only a failed run can be retried.",
            code="run_not_failed",
            details={"status": run.status},
        )
    if run.parent_run_id is not None:
        raise Conflict(
            f"Run {run.pk} is a child of run {run.parent_run_id}: retry the parent run, whose "
            "step then starts a new child.",
            code="child_run",
            details={"parent_run": str(run.parent_run_id)},
        )
    # A delivery holding a step run when the run failed cancels it itself, once it has the
    # run's lock (engine.finish.run_abort); until then the run is still stopping.
    if StepRun.objects.filter(run=run, status__in=STEP_ACTIVE).exists():
        raise Conflict(
            f"Run {run.pk} is still stopping a step; try again in a moment.",
            code="run_stopping",
        )


@dataclass(frozen=True)
class Latest:
    """An iteration's latest execution: its attempt number, status, and whether it was a gate's
    hold (waited for a person before it ever started)."""

    attempt: int
    status: str
    held: bool


def _latest_attempts(run: Run, ended: list[RunStep]) -> dict[int, dict[int, Latest]]:
    """run step id -> iteration -> its latest execution."""
    found: dict[int, dict[int, Latest]] = {}
    rows = StepRun.objects.filter(run=run, run_step__in=ended).order_by("attempt")
    for run_step_id, iteration, attempt, status, reason, started in rows.values_list(
        "run_step_id", "iteration", "attempt", "status", "wait_reason", "started_at"
    ):
        held = reason == ESCALATED and started is None
        found.setdefault(run_step_id, {})[iteration] = Latest(attempt, status, held)
    return found


def _check_attempts_can_change(run: Run, ended: list[RunStep], attempts: dict) -> None:
    """Refuse a retry that can only fail the same way: the run failed in its `outputs`, or a
    step failed after all its executions succeeded (its `set` or `until` raised, a `repeat`
    ran out), none of which an attempt changes (the run's version is pinned)."""
    if not ended:
        raise Conflict(
            f"Run {run.pk} failed after its steps were done ({run.error}); a retry would fail "
            "the same way.",
            code="not_retryable",
            details={"error": run.error},
        )
    for run_step in ended:
        executions = attempts.get(run_step.pk)
        if executions and all(latest.status in FINISHED for latest in executions.values()):
            raise Conflict(
                f"Step '{run_step.step_id}' failed after its executions succeeded "
                f"({run_step.error}); a retry would fail the same way.",
                code="not_retryable",
                details={"step": run_step.step_id, "error": run_step.error},
            )


def _step_again(unit: Unit, run_step: RunStep, attempts: dict[int, Latest]) -> None:
    """Reopen a step the failure ended and start its fresh attempts (with the run's lock)."""
    step = unit.spec.step(run_step.step_id)
    if not attempts:
        # It never ran (a gate blocked it, its `when` or `foreach` raised) and has no history
        # but its events: it starts afresh, its gates and `when` asked again.
        RunStep.objects.filter(pk=run_step.pk).delete()
        unit.steps[step.id] = None
        steps_start(unit, [step.id])
        return
    run_step.status, run_step.output, run_step.error = StepStatus.RUNNING, None, ""
    run_step.finished_at = None
    row_update(run_step, ["status", "output", "error", "finished_at"])
    unit.steps.pop(step.id, None)  # read again if the planner asks: it is running now
    first = attempts.get(0)
    if first is not None and first.held:
        _held_step_again(unit, run_step, step, attempt=first.attempt + 1)
        return
    for iteration, latest in sorted(attempts.items()):
        if latest.status not in FINISHED:
            step_run_new(unit, run_step, step, iteration=iteration, attempt=latest.attempt + 1)


def _held_step_again(unit: Unit, run_step: RunStep, step, *, attempt: int) -> None:
    """A step its gate held never ran, and no approval that the failure cancelled (nor a
    person's refusal) is taken as given: its gates are asked again. Allowed, it runs as
    `attempt` (a foreach's items: as their attempt 1); escalated again, a plain step is held
    anew as `attempt`, while a foreach or repeat, whose hold must be attempt 0
    (engine.progress), cannot be held twice: the retry is refused."""
    decision = gates_decide(unit, step)
    looped = step.foreach is not None or step.repeat is not None
    if isinstance(decision, Escalate) and looped:
        raise Conflict(
            f"Step '{step.id}' would wait for a person again, and a foreach or repeat step "
            "cannot be held twice: start a new run.",
            code="not_retryable",
            details={"step": step.id},
        )
    finished = gate_decision_apply(
        unit, step, run_step, decision, hold_attempt=attempt, first_attempt=attempt
    )
    if finished:
        # Finished at once: an empty foreach goes on; a block failed the run again, and
        # steps_start starts nothing in an ended run.
        steps_start(unit, unit.spec.graph.dependents[step.id])
