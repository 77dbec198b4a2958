"""Advance a run: start the steps whose needs are met, record results, finish the run.

Every function here runs inside `engine.locks.run_locked` or `step_run_locked`, and takes the
run's row lock (`run_lock`) before it reads what other transactions of the run may be changing:
the statuses of a join's needs, a foreach's progress, the run's state and counters. That lock
serializes them, so "is this step started yet?" has one answer, and the unique (run, step_id)
of RunStep backs it up. Counters change by deltas, added to the current counts when written.
"""

import json
import random
from collections import deque
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from workflows import expressions
from workflows.engine.context import template_context
from workflows.engine.dispatch import dispatch_later, resume_on_commit, revoke_on_commit
from workflows.engine.events import events_append
from workflows.engine.locks import run_lock, run_locked, run_sync
from workflows.engine.rows import row_insert, row_update
from workflows.engine.transitions import run_transition
from workflows.models import (
    RUN_TERMINAL,
    STEP_ACTIVE,
    Run,
    RunStatus,
    RunStep,
    StepRun,
    StepStatus,
)
from workflows.spec import StepSpec, WorkflowSpec

FINISHED = (StepStatus.SUCCEEDED, StepStatus.SKIPPED)
# What claiming a step run sets; an execution inside the claiming transaction saves them with
# its outcome, so the step run is written once.
CLAIM_FIELDS = ["status", "claim", "worker", "task_id", "started_at", "lease_until"]
EVENT_OUTPUT_MAX_CHARS = 4000


class StepBroken(Exception):
    """A step's own definition failed at run time (e.g. `when` raised); it fails without retry."""


def steps_start(run: Run, spec: WorkflowSpec, candidates) -> None:
    """Start every candidate whose needs are all finished; skip what `when` or skipped needs
    rule out, and go on (iteratively: chains of skips can be long) to what the skips unblock."""
    assert connection.in_atomic_block
    graph = spec.graph
    queue = deque(candidates)
    _step_statuses(run, {need for candidate in queue for need in graph.needs[candidate]})
    while queue and not run.is_terminal:
        step_id = queue.popleft()
        needs = graph.needs[step_id]
        statuses = _step_statuses(run, needs)
        # A candidate's own status is never read: candidates are a new run's roots or dependents
        # of a step that finished in this transaction, and a step starts only in the transaction
        # that finishes its last need. So it is unstarted unless this transaction started it
        # (the unique (run, step_id) would refuse a second start anyway).
        if statuses.get(step_id) is not None or any(
            statuses[need] not in FINISHED for need in needs
        ):
            continue
        step = graph.steps[step_id]
        if needs and all(statuses[need] == StepStatus.SKIPPED for need in needs):
            _skip(run, spec, step, "every step it needs was skipped")
            queue.extend(graph.dependents[step_id])
            continue
        try:
            items = _evaluate_gates(run, spec, step)
        except StepBroken as exc:
            run_step = _run_step_new(run, step.id)
            step_finish(run, spec, run_step, StepStatus.FAILED, error=str(exc))
            return
        if items is False:
            _skip(run, spec, step, f"when is false: {step.when}")
            queue.extend(graph.dependents[step_id])
        elif _begin(run, spec, step, items):
            queue.extend(graph.dependents[step_id])


def _step_statuses(run: Run, step_ids) -> dict[str, str | None]:
    """The run's step statuses (None: not started), read once per transaction and kept current
    by this module; callers get the live mapping, so nested starts and skips show up in it."""
    cache = run.__dict__.setdefault("step_statuses", {})
    missing = [step_id for step_id in step_ids if step_id not in cache]
    if missing:
        run_lock(run)  # a join: its other needs may be finishing in other transactions
        found = dict(
            RunStep.objects.filter(run=run, step_id__in=missing).values_list("step_id", "status")
        )
        cache.update({step_id: found.get(step_id) for step_id in missing})
    return cache


def _run_step_new(run: Run, step_id: str, items=None) -> RunStep:
    run.__dict__.setdefault("step_statuses", {})[step_id] = StepStatus.RUNNING
    run_step = RunStep(run=run, step_id=step_id, status=StepStatus.RUNNING, items=items)
    row_insert(run_step)
    return run_step


def _evaluate_gates(run, spec, step: StepSpec):
    """Return False to skip, the foreach list, or None for a plain step."""
    if step.when is None and step.foreach is None:
        return None
    context = template_context(run, spec, step)
    if step.when is not None:
        try:
            if not expressions.evaluate(step.when, context):
                return False
        except expressions.ExpressionError as exc:
            raise StepBroken(f"step '{step.id}' when: {exc}") from None
    if step.foreach is None:
        return None
    try:
        items = expressions.evaluate(step.foreach, context)
    except expressions.ExpressionError as exc:
        raise StepBroken(f"step '{step.id}' foreach: {exc}") from None
    if not isinstance(items, list | tuple):
        raise StepBroken(f"step '{step.id}' foreach: expected a list, got {type(items).__name__}")
    return list(items)


def _begin(run, spec, step: StepSpec, items) -> bool:
    """Start the step's first executions; return True when it finished at once (empty foreach)."""
    run_step = _run_step_new(run, step.id, items)
    if items is None:
        step_run_new(run, run_step, step, iteration=0)
        return False
    if not items:
        step_finish(run, spec, run_step, StepStatus.SUCCEEDED, output=[], start_dependents=False)
        return True
    for iteration in range(min(step.concurrency, len(items))):
        step_run_new(run, run_step, step, iteration=iteration)
    return False


def _skip(run, spec, step: StepSpec, reason: str) -> None:
    run_step = _run_step_new(run, step.id)
    step_finish(run, spec, run_step, StepStatus.SKIPPED, error=reason, start_dependents=False)


def step_run_new(run, run_step, step: StepSpec, *, iteration: int, attempt: int = 1, delay_s=0.0):
    """Create the execution of one iteration/attempt and dispatch it when due."""
    now = timezone.now()
    due = delay_s <= 0
    step_run = StepRun(
        run=run,
        run_step=run_step,
        step_id=step.id,
        kind=step.kind,
        iteration=iteration,
        attempt=attempt,
        due_at=now + timedelta(seconds=max(delay_s, 0)),
        dispatched_at=now if due else None,
    )
    row_insert(step_run)
    if step.foreach is not None or step.repeat is not None:
        run_step.iterations_started = max(run_step.iterations_started, iteration + 1)
        row_update(run_step, ["iterations_started"])
    payload = {"step": step.id, "iteration": iteration, "attempt": attempt}
    if not due:
        payload["due_at"] = step_run.due_at.isoformat()
    events_append(run, [("step.queued", payload)])
    run.steps_busy += 1
    if due:
        dispatch_later(run, step_run, step.timeout_s)
    return step_run


def attempt_succeeded(run: Run, spec: WorkflowSpec, step_run: StepRun, output) -> None:
    """Record a successful execution and move the step (and run) on."""
    step = spec.step(step_run.step_id)
    _close(run, step_run, StepStatus.SUCCEEDED, output=output)
    events_append(run, [("step.succeeded", {**step_ref(step_run), **_bounded_output(output)})])
    if step.foreach is not None:
        run_lock(run)  # its iterations finish in parallel
        _foreach_progress(run, spec, step, RunStep.objects.get(pk=step_run.run_step_id))
    elif step.repeat is not None:
        run_step = RunStep.objects.get(pk=step_run.run_step_id)
        _repeat_progress(run, spec, step, run_step, step_run, output)
    else:  # a plain step is done with its execution; step_finish only writes what it sets
        run_step = RunStep(pk=step_run.run_step_id, run=run, step_id=step.id)
        step_finish(run, spec, run_step, StepStatus.SUCCEEDED, output=output)


def attempt_failed(run: Run, spec: WorkflowSpec, step_run: StepRun, error: str) -> None:
    """Record a failed execution; retry per the step's policy or fail the step."""
    run_lock(run)
    step = spec.step(step_run.step_id)
    _close(run, step_run, StepStatus.FAILED, error=error)
    events_append(run, [("step.failed", {**step_ref(step_run), "error": error})])
    retry = step.retry
    run_step = RunStep.objects.get(pk=step_run.run_step_id)
    if step_run.attempt < retry.max_attempts:
        delay = min(retry.backoff_s * 2 ** (step_run.attempt - 1), retry.max_backoff_s)
        delay *= random.uniform(0.8, 1.0)  # jitter, so failed siblings do not retry in lockstep
        step_run_new(
            run,
            run_step,
            step,
            iteration=step_run.iteration,
            attempt=step_run.attempt + 1,
            delay_s=delay,
        )
        return
    step_finish(run, spec, run_step, StepStatus.FAILED, error=error)


def attempt_waiting(run: Run, step_run: StepRun, *, wake_at, output, details: dict) -> None:
    run.steps_busy -= 1
    step_run.status = StepStatus.WAITING
    step_run.wake_at = wake_at
    step_run.output = output
    step_run.lease_until = None
    row_update(step_run, [*CLAIM_FIELDS, "wake_at", "output", "input"])
    payload = {**step_ref(step_run), **details}
    if wake_at is not None:
        payload["wake_at"] = wake_at.isoformat()
    events_append(run, [("step.waiting", payload)])


def step_run_cancel_orphan(run: Run, step_run: StepRun) -> None:
    """Cancel an active step run of an ended run, and its step: ones that run_abort skipped
    because a delivery held them. (run_abort has already set the run's steps_busy to 0.)"""
    step_run.status = StepStatus.CANCELLED
    step_run.finished_at = timezone.now()
    step_run.lease_until = None
    row_update(step_run, ["status", "finished_at", "lease_until"])
    RunStep.objects.filter(pk=step_run.run_step_id, status=StepStatus.RUNNING).update(
        status=StepStatus.CANCELLED, finished_at=step_run.finished_at
    )
    events_append(run, [("step.cancelled", step_ref(step_run))])


def _close(run: Run, step_run: StepRun, status: str, *, output=None, error: str = "") -> None:
    if step_run.status != StepStatus.WAITING:  # a waiting step run was counted off already
        run.steps_busy -= 1
    step_run.status = status
    step_run.output = output
    step_run.error = error
    step_run.finished_at = timezone.now()
    step_run.lease_until = None
    row_update(step_run, [*CLAIM_FIELDS, "output", "error", "finished_at", "input"])


def _foreach_progress(run, spec, step: StepSpec, run_step: RunStep) -> None:
    run_step.iterations_done += 1
    row_update(run_step, ["iterations_done"])
    if run_step.iterations_started < len(run_step.items):
        step_run_new(run, run_step, step, iteration=run_step.iterations_started)
    elif run_step.iterations_done == len(run_step.items):
        outputs = list(
            StepRun.objects.filter(run_step=run_step, status=StepStatus.SUCCEEDED)
            .order_by("iteration")
            .values_list("output", flat=True)
        )
        step_finish(run, spec, run_step, StepStatus.SUCCEEDED, output=outputs)


def _repeat_progress(run, spec, step: StepSpec, run_step, step_run, output) -> None:
    repeat = step.repeat
    context = template_context(run, spec, step, output=output, iteration=step_run.iteration)
    try:
        done = bool(expressions.evaluate(repeat.until, context))
    except expressions.ExpressionError as exc:
        step_finish(run, spec, run_step, StepStatus.FAILED, error=f"step '{step.id}' until: {exc}")
        return
    if done:
        step_finish(run, spec, run_step, StepStatus.SUCCEEDED, output=output)
    elif step_run.iteration + 1 >= repeat.max:
        error = f"step '{step.id}' repeat: until not met after {repeat.max} iterations"
        step_finish(run, spec, run_step, StepStatus.FAILED, error=error)
    else:
        step_run_new(run, run_step, step, iteration=step_run.iteration + 1, delay_s=repeat.every_s)


def step_finish(
    run, spec, run_step: RunStep, status: str, *, output=None, error="", start_dependents=True
) -> None:
    """Close a step of the run (all its iterations are done) and start what it unblocks
    (unless the caller, steps_start, goes on to the dependents itself)."""
    step = spec.step(run_step.step_id)
    if status == StepStatus.SUCCEEDED and step.set:
        run_lock(run)  # read-modify-write of the run's state
        try:
            context = template_context(run, spec, step, output=output)
            updates = expressions.render(step.set, context)
        except expressions.ExpressionError as exc:
            status, error = StepStatus.FAILED, f"step '{step.id}' set: {exc}"
        else:
            run.state = {**run.state, **updates}
            row_update(run, ["state"])
    run_step.status = status
    run_step.output = output
    run_step.error = error
    run_step.finished_at = timezone.now()
    row_update(run_step, ["status", "output", "error", "finished_at"])
    run.__dict__.setdefault("step_statuses", {})[run_step.step_id] = status
    payload = {"step": step.id, "status": status, **_bounded_output(output)}
    if error:
        payload["reason" if status == StepStatus.SKIPPED else "error"] = error
    events_append(run, [("step.completed", payload)])
    if status == StepStatus.FAILED:
        run_abort(run, RunStatus.FAILED, reason=error)
        return
    run.progress_done += 1
    if start_dependents:
        steps_start(run, spec, spec.graph.dependents[step.id])


def run_settle(run: Run, spec: WorkflowSpec, *, commit: bool = False) -> None:
    """Complete the run when every step is done; otherwise keep RUNNING/WAITING truthful.

    `commit`: the transaction ends after this. When the counts as read need no settling, the
    write that checks them against the current counts also carries the COMMIT; the run's lock is
    then held only while the server runs that one message.
    """
    if commit and _settled(run):
        run_sync(run, settled=True, commit=True)
        return
    run_sync(run)  # the current counts, under the run's lock
    run_lock(run)  # (taken by run_sync, unless it had nothing to write)
    if _settled(run):
        return
    if run.progress_done >= run.progress_total:
        _complete(run, spec)
    else:  # RUNNING with nothing busy, or WAITING with something busy again
        run_transition(run, RunStatus.RUNNING if run.steps_busy else RunStatus.WAITING)


def _settled(run: Run) -> bool:
    """Whether run_settle would leave the run as it is, by its counts (current once locked)."""
    if run.is_terminal:
        return True
    busy = run.steps_busy > 0
    return (
        run.progress_done < run.progress_total
        and not (run.status == RunStatus.RUNNING and not busy)
        and not (run.status == RunStatus.WAITING and busy)
    )


def _complete(run: Run, spec: WorkflowSpec) -> None:
    context = template_context(run, spec, None)
    if spec.outputs is None:
        result = {step_id: step["output"] for step_id, step in context["steps"].items()}
    else:
        try:
            result = expressions.render(spec.outputs, context)
        except expressions.ExpressionError as exc:
            run_abort(run, RunStatus.FAILED, reason=f"outputs: {exc}")
            return
    run.result = result
    row_update(run, ["result"])
    run_transition(run, RunStatus.COMPLETED)
    _notify_parent(run)


def run_abort(run: Run, status: str, *, reason: str) -> None:
    """End the run as FAILED or CANCELLED: stop its steps, its children, tell its parent.

    Step runs (and their steps) that a delivery holds are skipped, not waited for (that
    delivery may be waiting for this run's lock): it finds the run ended and cancels them itself.
    """
    run_lock(run)
    run.error = reason
    row_update(run, ["error"])
    run_transition(run, status, reason=reason)
    active = list(
        StepRun.objects.select_for_update(skip_locked=True, of=("self",)).filter(
            run=run, status__in=STEP_ACTIVE
        )
    )
    running_tasks = [sr.task_id for sr in active if sr.status == StepStatus.RUNNING and sr.task_id]
    now = timezone.now()
    StepRun.objects.filter(pk__in=[sr.pk for sr in active]).update(
        status=StepStatus.CANCELLED, finished_at=now, lease_until=None
    )
    run.steps_busy = 0
    run_steps = RunStep.objects.select_for_update(skip_locked=True, of=("self",)).filter(
        run=run, status=StepStatus.RUNNING
    )
    RunStep.objects.filter(pk__in=list(run_steps.values_list("pk", flat=True))).update(
        status=StepStatus.CANCELLED, finished_at=now
    )
    events_append(run, [("step.cancelled", step_ref(sr)) for sr in active])
    revoke_on_commit(running_tasks)
    children = Run.objects.filter(parent_run=run).exclude(status__in=RUN_TERMINAL)
    for child_id in children.values_list("pk", flat=True):
        with run_locked(child_id) as child:
            if not child.is_terminal:
                run_abort(child, RunStatus.CANCELLED, reason=f"parent run {run.pk} ended: {status}")
    _notify_parent(run)


def _notify_parent(run: Run) -> None:
    if run.parent_step_run_id is not None:
        resume_on_commit(run.parent_run_id, run.parent_step_run_id)


def step_ref(step_run: StepRun) -> dict:
    return {"step": step_run.step_id, "iteration": step_run.iteration, "attempt": step_run.attempt}


def _bounded_output(output) -> dict:
    if output is None:
        return {}
    encoded = json.dumps(output, default=str)
    if len(encoded) > EVENT_OUTPUT_MAX_CHARS:
        return {"output_truncated": True}
    return {"output": output}


def lease_for(timeout_s: float) -> timedelta:
    return timedelta(seconds=timeout_s + settings.CHAMELEON["LEASE_GRACE_S"])
