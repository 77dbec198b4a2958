"""Execute one step run: claim it, do the work, record the outcome once.

A delivery of a step run that is finished, or running under a live lease elsewhere, does nothing;
a delivery of one whose lease expired (its worker died) takes it over. Quick kinds without
outside effects (`runs_inline`) execute inside the claiming transaction; the others execute
outside any transaction (engine.calls keeps many of them in flight) and their outcome is
recorded only by the holder of the current claim, so a step's result is written at most once.
"""

import dataclasses
import json
import time
import traceback
import uuid
from dataclasses import dataclass

from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone
from pydantic import ValidationError

from workflows import expressions, metrics
from workflows.engine.context import template_context
from workflows.engine.contract import Done, Fail, Outcome, Skip, StepContext, StepExecutor, Wait
from workflows.engine.finish import run_settle, step_run_orphaned
from workflows.engine.holds import review_hold
from workflows.engine.progress import (
    CLAIM_FIELDS,
    attempt_failed,
    attempt_skipped,
    attempt_succeeded,
    attempt_waiting,
    cost_add,
    degrade,
    lease_for,
)
from workflows.engine.registry import event_types, executor_for, kinds
from workflows.engine.rows import row_update
from workflows.engine.transitions import hold_release, records_save, step_run_transition
from workflows.engine.unit import RunMovedOn, Unit, step_unit
from workflows.models import Run, RunStatus, StepRun, StepStatus


@dataclass(frozen=True)
class Claim:
    """A step run claimed for execution outside the engine's transaction."""

    run_id: str
    step_run_id: int
    token: uuid.UUID
    executor: StepExecutor
    context: StepContext


def step_run_execute(*, run_id, step_run_id: int, worker: str = "", task_id: str = "") -> str:
    """Claim, execute and record the step run here and now; return what happened."""
    claimed = step_run_claim(run_id=run_id, step_run_id=step_run_id, worker=worker, task_id=task_id)
    if not isinstance(claimed, Claim):
        return claimed
    return step_run_record(claimed, claim_perform(claimed))


def step_run_claim(*, run_id, step_run_id: int, worker: str = "", task_id: str = ""):
    """Claim the step run: return the Claim to perform outside, or what happened if that was
    all (skipped, done inline, failed before it could start)."""

    def claim(lock_run: bool):
        with step_unit(run_id, step_run_id, lock_run=lock_run) as (unit, step_run):
            return _claim(unit, step_run, worker, task_id)

    try:
        return _late_locked(claim)
    except (Run.DoesNotExist, StepRun.DoesNotExist):
        return "skipped"  # a late delivery for a run that was deleted


def _late_locked(phase):
    """Run a phase with the run read, locked only when needed; if the run moved on meanwhile
    (engine.unit), run it again with the run locked from the start."""
    try:
        return phase(False)
    except RunMovedOn:
        return phase(True)


def _claim(unit: Unit, step_run: StepRun, worker: str, task_id: str):
    run, now = unit.run, timezone.now()
    takeover = step_run.status == StepStatus.RUNNING and step_run.lease_until < now
    runnable = step_run.status == StepStatus.PENDING and step_run.due_at <= now
    if run.is_terminal and step_run.status in (StepStatus.PENDING, StepStatus.RUNNING):
        step_run_orphaned(unit, step_run)
        return "cancelled"
    if run.status != RunStatus.RUNNING or not (runnable or takeover):
        return "skipped"
    step = unit.spec.step(step_run.step_id)
    executor = executor_for(step.kind)
    payload = {"worker": worker}
    if takeover:
        payload["took_over_from"] = step_run.worker
    step_run.claim, step_run.worker, step_run.task_id = uuid.uuid4(), worker, task_id
    step_run.started_at, step_run.lease_until = now, now + lease_for(step.timeout_s)
    started = time.monotonic()
    try:
        if executor is None:
            available = ", ".join(kinds())
            raise Fail(
                f"step '{step.id}': step kind '{step.kind}' is not available (kinds: {available})",
                code="unknown_kind",
                retryable=False,
            )
        context = _context(unit, step_run, step)
    except Fail as failure:
        step_run_transition(unit, step_run, StepStatus.RUNNING, fields=CLAIM_FIELDS, **payload)
        _record(unit, step_run, failure)
        return "failed"
    step_run.input = context.input
    step_run_transition(
        unit, step_run, StepStatus.RUNNING, fields=[*CLAIM_FIELDS, "input"], **payload
    )
    claim = Claim(str(run.pk), step_run.pk, step_run.claim, executor, context)
    if executor.runs_inline(step, context.params):
        # Like Temporal's local activities: quick work without outside effects runs in the
        # claiming transaction, so it costs one transaction and needs no lease.
        return _record(unit, step_run, _inline_performed(claim, started))
    return claim


def _inline_performed(claim: Claim, started: float) -> Outcome:
    """Perform inline work, which nothing can interrupt (its templates are bounded in work,
    engine.expressions), and fail it if rendering and running it outlasted the step's timeout_s."""
    outcome = claim_perform(claim)
    step = claim.context.step
    if time.monotonic() - started > step.timeout_s and not isinstance(outcome, Fail):
        return _timed_out(step)
    return outcome


def _context(unit: Unit, step_run: StepRun, step) -> StepContext:
    """What the executor is given, the step's `with` rendered; or raise Fail (not retried:
    the same templates over the same values fail the same way)."""
    try:
        params = step.params
    except ValidationError as exc:
        raise Fail(f"step '{step.id}': {exc}", code="invalid_step", retryable=False) from None
    run = unit.run
    return StepContext(
        run_id=str(run.pk),
        step_run_id=step_run.pk,
        step=step,
        params=params,
        input=_as_json(_render_input(unit, step_run, step), f"step '{step.id}' with"),
        iteration=step_run.iteration,
        attempt=step_run.attempt,
        timeout_s=step.timeout_s,
        idempotency_key=step_run.idempotency_key,
        started_by_id=run.started_by_id,
        ctx=run.ctx,
        claim=step_run.claim,
        budget_usd=run.budget_usd,
    )


def _render_input(unit: Unit, step_run: StepRun, step) -> dict:
    if not step.with_:
        return {}
    extra = {}
    if step.foreach is not None:
        items = step_run.run_step.items
        extra = {"item": items[step_run.iteration], "index": step_run.iteration}
    elif step.repeat is not None:
        extra = {"iteration": step_run.iteration}
    context = template_context(unit.run, unit.spec, step, **extra)
    rendered = {}
    for key, value in step.with_.items():
        try:
            rendered[key] = expressions.render(value, context)
        except expressions.ExpressionError as exc:
            message = f"step '{step.id}' with.{key}: {exc}"
            raise Fail(message, code="template_error", retryable=False) from None
    return rendered


def _as_json(value, what: str):
    """Fail the step, not the transaction that records it, on values JSON cannot hold."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise Fail(f"{what}: {exc}", code="not_json", retryable=False) from None


def claim_perform(claim: Claim) -> Outcome:
    """Run the executor; every way it can end is an outcome (a failure is recorded, never lost)."""
    step = claim.context.step
    started = time.monotonic()
    try:
        outcome = claim.executor.execute(claim.context)
        outcome = outcome_checked(step.id, outcome)
    except SoftTimeLimitExceeded:
        outcome = _timed_out(step)
    except Fail as failure:
        outcome = failure
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
        outcome = Fail(message, code="error")
    metrics.step_observed(step.kind, time.monotonic() - started)
    return outcome


def _succeeded(unit: Unit, step_run: StepRun, output) -> str:
    """Record a success, unless a reviewer holds it for someone to confirm or correct."""
    hold = review_hold(unit, step_run, output)
    if hold is None:
        attempt_succeeded(unit, step_run, output)
        return "succeeded"
    attempt_waiting(unit, step_run, dataclasses.replace(hold, output=output))
    records_save(hold.records)
    return "waiting"


def _timed_out(step) -> Fail:
    return Fail(f"step '{step.id}' timed out after {step.timeout_s:g}s", code="timeout")


def outcome_checked(step_id: str, outcome) -> Outcome:
    if not isinstance(outcome, Done | Wait | Skip | Fail):
        return Fail(f"step '{step_id}': the executor returned {outcome!r}, not an outcome")
    for event_type, _ in outcome.events:
        if event_type not in event_types():
            return Fail(f"step '{step_id}': event type '{event_type}' is not registered")
    events = _as_json(outcome.events, f"step '{step_id}' events")
    if isinstance(outcome, Fail):
        outcome.events = events
        return outcome
    changes = {"events": events}
    if not isinstance(outcome, Skip):
        changes["output"] = _as_json(outcome.output, f"step '{step_id}' output")
    return dataclasses.replace(outcome, **changes)


def step_run_record(claim: Claim, outcome: Outcome, *, call_in_flight: bool = False) -> str:
    """Record the outcome of a claimed execution, if the claim still holds. An outcome that
    comes too late (the step run was cancelled, timed out or taken over) is discarded, but what
    it cost, its events and its records are kept: what was spent was spent.

    `call_in_flight`: the outcome is a timeout while the call goes on; its budget hold stays
    until the call's own outcome arrives (recorded late), so nothing can spend it meanwhile."""

    def record(lock_run: bool):
        with step_unit(claim.run_id, claim.step_run_id, lock_run=lock_run) as (unit, current):
            ours = current.claim == claim.token
            if ours and current.status == StepStatus.RUNNING and not unit.run.is_terminal:
                if call_in_flight:
                    unit.holds_kept.add(current.pk)
                return _record(unit, current, outcome)
            if ours and current.status == StepStatus.RUNNING:
                step_run_orphaned(unit, current)
            _late(unit, current, outcome, ours)
            return "discarded"

    try:
        return _late_locked(record)
    except (Run.DoesNotExist, StepRun.DoesNotExist):
        return "discarded"


def _late(unit: Unit, step_run: StepRun, outcome: Outcome, ours: bool) -> None:
    """Keep what a discarded outcome spent and said; free what its attempt still held."""
    cost_add(unit, step_run, outcome.cost_usd)
    _outcome_written(unit, step_run, outcome)
    if ours and step_run.reserved_usd:
        hold_release(unit, step_run)
    row_update(step_run, ["cost_usd", "reserved_usd"])


def _outcome_written(unit: Unit, step_run: StepRun, outcome: Outcome) -> None:
    for event_type, payload in outcome.events:
        unit.event(event_type, {"step": step_run.step_id, **payload})
    records_save(outcome.records)


def _record(unit: Unit, step_run: StepRun, outcome: Outcome) -> str:
    """Record what the running execution did and move the run on."""
    cost_add(unit, step_run, outcome.cost_usd)
    _outcome_written(unit, step_run, outcome)
    if isinstance(outcome, Fail):
        attempt_failed(
            unit, step_run, outcome.message, code=outcome.code, retryable=outcome.retryable
        )
        result = "failed"
    elif isinstance(outcome, Wait):
        attempt_waiting(unit, step_run, outcome)
        if outcome.wake_at is not None and outcome.wake_at <= timezone.now():
            attempt_succeeded(unit, step_run, outcome.output)  # a timer already due
        result = "waiting"
    else:
        if outcome.degraded:
            degrade(unit, step_run)
        if isinstance(outcome, Skip):
            attempt_skipped(unit, step_run, outcome.reason)
            result = "skipped"
        else:
            result = _succeeded(unit, step_run, outcome.output)
    run_settle(unit)
    return result
