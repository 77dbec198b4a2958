"""Execute one step run: claim it, do the work outside any transaction, commit the result once.

A delivery of a step run that is finished, or running under a live lease elsewhere, does nothing;
a delivery of one whose lease expired (its worker died) takes it over. The result is committed
only by the holder of the current claim, so a step's result is written at most once.
"""

import json
import time
import traceback
import uuid
from dataclasses import dataclass

from celery.exceptions import SoftTimeLimitExceeded
from django.utils import timezone

from workflows import expressions, metrics
from workflows.engine.context import template_context
from workflows.engine.events import events_append
from workflows.engine.executors.base import Done, StepContext, StepFailed, Wait, executor_for
from workflows.engine.locks import RunMovedOn, run_lock, run_locked, step_run_locked
from workflows.engine.progress import (
    CLAIM_FIELDS,
    attempt_failed,
    attempt_succeeded,
    attempt_waiting,
    lease_for,
    run_settle,
    step_ref,
    step_run_cancel_orphan,
)
from workflows.engine.rows import row_update
from workflows.engine.transitions import run_transition
from workflows.models import Run, RunStatus, StepRun, StepStatus
from workflows.spec import StepSpec, WorkflowSpec, spec_for_version


@dataclass(frozen=True)
class Claim:
    run: Run
    step_run: StepRun
    spec: WorkflowSpec
    step: StepSpec
    token: uuid.UUID


def step_run_execute(*, run_id, step_run_id: int, worker: str = "", task_id: str = "") -> str:
    """Execute the step run if it is ours to run; return what happened (for logs and tests)."""
    try:
        claim = _retrying(_claim_phase, run_id, step_run_id, worker, task_id)
    except (Run.DoesNotExist, StepRun.DoesNotExist):
        return "skipped"  # a late delivery for a run that was deleted
    if isinstance(claim, str):
        return claim  # done in the claiming transaction
    performed = _perform(claim)
    try:
        return _retrying(_record_claimed, run_id, claim, performed)
    except SoftTimeLimitExceeded:
        # The work was done but the step's time ran out while waiting for the run's lock: record
        # it anyway rather than lose it (the soft limit fires once; the hard one 10 s later).
        return _retrying(_record_claimed, run_id, claim, performed)


def _retrying(phase, *args):
    """Run a phase with the run read but not locked; if the run moved on meanwhile (locks.py),
    run it again with the run locked from the start."""
    try:
        return phase(*args, lock_run=False)
    except RunMovedOn:
        return phase(*args, lock_run=True)


def _claim_phase(run_id, step_run_id: int, worker: str, task_id: str, *, lock_run: bool):
    """Claim the step run: return the Claim to perform, or what happened if that was all."""
    with step_run_locked(run_id, step_run_id, lock_run=lock_run) as (run, step_run):
        claim = _claim(run, step_run, worker, task_id)
        if claim is None:
            return "skipped"
        if executor_for(claim.step.kind).runs_inline(claim.step):
            # Like Temporal's local activities: quick work without outside effects runs
            # in the claiming transaction, so it costs one transaction and needs no lease
            # (the claim is saved together with the outcome).
            return _record(run, claim, *_perform(claim))
        row_update(claim.step_run, CLAIM_FIELDS)
        return claim


def _record_claimed(run_id, claim: Claim, performed: tuple, *, lock_run: bool) -> str:
    with step_run_locked(run_id, claim.step_run.pk, lock_run=lock_run) as (run, current):
        if current.status != StepStatus.RUNNING or current.claim != claim.token:
            return "discarded"  # cancelled, or taken over after our lease ran out
        if run.is_terminal:
            step_run_cancel_orphan(run, current)
            return "discarded"
        return _record(run, claim, *performed)


def _claim(run: Run, step_run: StepRun, worker: str, task_id: str) -> Claim | None:
    """Take the step run if it is due (or its lease expired); the caller saves CLAIM_FIELDS."""
    now = timezone.now()
    takeover = step_run.status == StepStatus.RUNNING and step_run.lease_until < now
    runnable = step_run.status == StepStatus.PENDING and step_run.due_at <= now
    if run.is_terminal and step_run.status in (StepStatus.PENDING, StepStatus.RUNNING):
        step_run_cancel_orphan(run, step_run)
        return None
    if run.status != RunStatus.RUNNING or not (runnable or takeover):
        return None
    spec = spec_for_version(run.version)
    step = spec.step(step_run.step_id)
    payload = {**step_ref(step_run), "worker": worker}
    if takeover:
        payload["took_over_from"] = step_run.worker
    step_run.status = StepStatus.RUNNING
    step_run.claim = uuid.uuid4()
    step_run.worker = worker
    step_run.task_id = task_id
    step_run.started_at = now
    step_run.lease_until = now + lease_for(step.timeout_s)
    events_append(run, [("step.started", payload)])
    return Claim(run, step_run, spec, step, step_run.claim)


def _perform(claim: Claim) -> tuple:
    """Render the input and run the executor; return (input, outcome, error)."""
    started = time.monotonic()
    step, rendered, outcome, error = claim.step, None, None, ""
    try:
        rendered = _as_json(_render_input(claim), f"step '{step.id}' with")
        context = StepContext(claim.run, claim.step_run, step, rendered, step.timeout_s)
        outcome = executor_for(step.kind).execute(context)
        if isinstance(outcome, Done):
            outcome = Done(_as_json(outcome.output, f"step '{step.id}' output"), outcome.degraded)
    except SoftTimeLimitExceeded:
        error = f"step '{step.id}' timed out after {step.timeout_s:g}s"
    except StepFailed as exc:
        error = str(exc)
    except Exception as exc:  # a failure is recorded on the step, never lost
        error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=8)}"
    metrics.step_observed(step.kind, time.monotonic() - started)
    return rendered, outcome, error


def _as_json(value, what: str):
    """Fail the step, not the transaction that records it, on values JSON cannot hold."""
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as exc:
        raise StepFailed(f"{what}: {exc}") from None


def _render_input(claim: Claim) -> dict:
    step, step_run = claim.step, claim.step_run
    if not step.with_:
        return {}
    extra = {}
    if step.foreach is not None:
        items = step_run.run_step.items
        extra = {"item": items[step_run.iteration], "index": step_run.iteration}
    elif step.repeat is not None:
        extra = {"iteration": step_run.iteration}
    context = template_context(claim.run, claim.spec, step, **extra)
    rendered = {}
    for key, value in step.with_.items():
        try:
            rendered[key] = expressions.render(value, context)
        except expressions.ExpressionError as exc:
            raise StepFailed(f"step '{step.id}' with.{key}: {exc}") from None
    return rendered


def _record(run: Run, claim: Claim, rendered, outcome, error: str) -> str:
    """Record the outcome of the claimed execution and move the run on."""
    step_run, spec = claim.step_run, claim.spec
    step_run.input = rendered  # saved with the outcome below
    if error:
        attempt_failed(run, spec, step_run, error)
        result = "failed"
    elif isinstance(outcome, Wait):
        attempt_waiting(
            run, step_run, wake_at=outcome.wake_at, output=outcome.output, details=outcome.details
        )
        step_run_resume_if_ready(run, spec, step_run)
        result = "waiting"
    else:
        assert isinstance(outcome, Done)
        if outcome.degraded and not run.degraded:
            run.degraded = True
            row_update(run, ["degraded"])
        attempt_succeeded(run, spec, step_run, outcome.output)
        result = "succeeded"
    run_settle(run, spec, commit=True)  # the delivery's transaction ends with this
    return result


def step_run_resume_if_ready(run: Run, spec: WorkflowSpec, step_run: StepRun) -> bool:
    """Finish a WAITING step run whose timer is due or whose child run has ended.

    Call inside engine.locks.run_locked or step_run_locked.
    """
    if step_run.status != StepStatus.WAITING or run.is_terminal:
        return False
    if step_run.wake_at is not None:
        if step_run.wake_at > timezone.now():
            return False
        _run_resume(run)
        attempt_succeeded(run, spec, step_run, step_run.output)
        return True
    run_lock(run)  # serializes with the child's resume task, which holds it while it looks
    child = Run.objects.filter(parent_step_run=step_run).first()
    if child is None or not child.is_terminal:
        return False
    _run_resume(run)
    if child.status == RunStatus.COMPLETED:
        attempt_succeeded(run, spec, step_run, child.result)
    else:
        error = f"child run {child.pk} ended {child.status}: {child.error}".rstrip(": ")
        attempt_failed(run, spec, step_run, error)
    return True


def _run_resume(run: Run) -> None:
    if run.status == RunStatus.WAITING:
        run_transition(run, RunStatus.RUNNING)


def step_run_resume(*, run_id, step_run_id: int) -> bool:
    """Resume a waiting step run if its wait is over (child run ended, timer due)."""
    with run_locked(run_id) as run:
        step_run = StepRun.objects.get(pk=step_run_id)
        spec = spec_for_version(run.version)
        if not step_run_resume_if_ready(run, spec, step_run):
            return False
        run_settle(run, spec, commit=True)
        return True
