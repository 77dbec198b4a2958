"""Advance a run: start the steps whose needs are met, record what executions did, finish the run.

Every function here takes the Unit of a run-locked transaction (engine.unit): what it reads of
the run's steps cannot change under it, and what it writes commits with the unit.
"""

import json
import random
from collections import deque
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from workflows import expressions
from workflows.engine.context import template_context
from workflows.engine.contract import Block, Escalate, Route, Wait
from workflows.engine.finish import run_abort
from workflows.engine.gates import gates_decide
from workflows.engine.holds import ESCALATED, escalation_ref, step_run_park
from workflows.engine.rows import row_insert, row_update
from workflows.engine.transitions import step_run_transition
from workflows.engine.unit import StepState, Unit
from workflows.models import RunStep, StepRun, StepStatus
from workflows.spec import StepSpec

FINISHED = (StepStatus.SUCCEEDED, StepStatus.SKIPPED)
# What claiming a step run sets; an execution inside the claiming transaction saves them with
# its outcome, so the step run is written once.
CLAIM_FIELDS = ["claim", "worker", "task_id", "started_at", "lease_until"]
EVENT_OUTPUT_MAX_CHARS = 4000
HOLD_ATTEMPT = 0  # the step run of a step a gate escalated: it waits before any attempt runs


class StepBroken(Exception):
    """A step's own definition failed at run time (e.g. `when` raised); it fails without retry."""


def steps_start(unit: Unit, candidates) -> None:
    """Start every candidate whose needs are all finished; skip what `when`, routes or skipped
    needs rule out, and go on (iteratively: chains of skips can be long) to what skips unblock."""
    graph = unit.spec.graph
    queue = deque(candidates)
    _step_states(unit, {need for candidate in queue for need in graph.needs[candidate]})
    while queue and not unit.run.is_terminal:
        step_id = queue.popleft()
        needs = graph.needs[step_id]
        states = _step_states(unit, needs)
        # Candidates are a new run's roots or dependents of a step that finished in this
        # transaction, and a step starts only in the transaction that finishes its last need.
        if unit.steps.get(step_id) is not None or any(
            states[need] is None or states[need].status not in FINISHED for need in needs
        ):
            continue
        step = graph.steps[step_id]
        reason = _ruled_out(step_id, needs, states)
        if reason is None:
            try:
                items = _evaluate_when_and_foreach(unit, step)
            except StepBroken as exc:
                step_finish(unit, _run_step_new(unit, step.id), StepStatus.FAILED, error=str(exc))
                return
            reason = f"when is false: {step.when}" if items is False else None
        if reason is not None:
            run_step = _run_step_new(unit, step.id)
            step_finish(unit, run_step, StepStatus.SKIPPED, error=reason, start_dependents=False)
            queue.extend(graph.dependents[step_id])
        elif _begin(unit, step, items):
            queue.extend(graph.dependents[step_id])


def _ruled_out(step_id: str, needs, states) -> str | None:
    if needs and all(states[need].status == StepStatus.SKIPPED for need in needs):
        return "every step it needs was skipped"
    for need in needs:
        routes = states[need].routes
        if routes is not None and step_id not in routes:
            return f"not routed to by '{need}'"
    return None


def _step_states(unit: Unit, step_ids) -> dict[str, StepState | None]:
    """The states of these steps of the run (None: not started), read once per transaction."""
    missing = [step_id for step_id in step_ids if step_id not in unit.steps]
    if missing:
        unit.lock_run()  # a join: its other needs may be finishing in other transactions
        found = RunStep.objects.filter(run=unit.run, step_id__in=missing)
        rows = {step_id: StepState(status, _routes(routes)) for step_id, status, routes in
                found.values_list("step_id", "status", "routes")}  # fmt: skip
        unit.steps.update({step_id: rows.get(step_id) for step_id in missing})
    return unit.steps


def _routes(routes) -> tuple[str, ...] | None:
    return None if routes is None else tuple(routes)


def _run_step_new(unit: Unit, step_id: str, items=None) -> RunStep:
    unit.steps[step_id] = StepState(StepStatus.RUNNING)
    run_step = RunStep(run=unit.run, step_id=step_id, status=StepStatus.RUNNING, items=items)
    row_insert(run_step)
    return run_step


def _evaluate_when_and_foreach(unit: Unit, step: StepSpec):
    """Return False to skip, the foreach list, or None for a plain step."""
    if step.when is None and step.foreach is None:
        return None
    context = template_context(unit.run, unit.spec, step)
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


def _begin(unit: Unit, step: StepSpec, items) -> bool:
    """Ask the gates, then start the step's first executions; return True when it finished at
    once (blocked, or an empty foreach)."""
    decision = gates_decide(unit, step)
    run_step = _run_step_new(unit, step.id, items)
    return gate_decision_apply(unit, step, run_step, decision)


def gate_decision_apply(
    unit: Unit, step: StepSpec, run_step: RunStep, decision, *, hold_attempt=HOLD_ATTEMPT,
    first_attempt: int = 1,
) -> bool:  # fmt: skip
    """Start the step as its gates decided; return True when it finished at once (blocked, or
    an empty foreach). An escalation holds it in a step run numbered `hold_attempt`; else a
    plain step's execution is numbered `first_attempt` (engine.retry numbers them on)."""
    if isinstance(decision, Block):
        step_finish(unit, run_step, StepStatus.FAILED, error=decision.reason)
        return True
    if isinstance(decision, Escalate):
        hold = step_run_new(unit, run_step, step, iteration=0, attempt=hold_attempt, hold=True)
        wait = Wait(reason=ESCALATED, ref=decision.ref or escalation_ref(hold))
        step_run_park(unit, hold, wait, message=decision.reason, details=decision.details)
        return False
    if isinstance(decision, Route):
        run_step.routes = list(decision.to)
        row_update(run_step, ["routes"])
        unit.steps[step.id] = StepState(StepStatus.RUNNING, tuple(decision.to))
    return executions_start(unit, run_step, step, attempt=first_attempt)


def executions_start(unit: Unit, run_step: RunStep, step: StepSpec, *, attempt: int = 1) -> bool:
    """Start a step's first executions (the first `concurrency` items of a foreach, each its
    attempt 1; a plain step's numbered `attempt`); return True when it finished at once (an
    empty foreach)."""
    items = run_step.items
    if step.foreach is None:
        step_run_new(unit, run_step, step, iteration=0, attempt=attempt)
        return False
    if not items:
        step_finish(unit, run_step, StepStatus.SUCCEEDED, output=[], start_dependents=False)
        return True
    for iteration in range(min(step.concurrency, len(items))):
        step_run_new(unit, run_step, step, iteration=iteration)
    return False


def step_run_new(
    unit: Unit, run_step, step: StepSpec, *, iteration: int, attempt: int = 1, delay_s=0.0,
    hold: bool = False,
) -> StepRun:  # fmt: skip
    """Create an execution of one iteration and attempt, and dispatch it when due (a `hold`
    is never dispatched: its caller moves it to WAITING)."""
    now = timezone.now()
    due = delay_s <= 0 and not hold
    step_run = StepRun(
        run=unit.run,
        run_step=run_step,
        step_id=step.id,
        kind=step.kind or "",
        iteration=iteration,
        attempt=attempt,
        due_at=now + timedelta(seconds=max(delay_s, 0)),
        dispatched_at=now if due else None,
    )
    row_insert(step_run)
    if not hold and (step.foreach is not None or step.repeat is not None):
        run_step.iterations_started = max(run_step.iterations_started, iteration + 1)
        row_update(run_step, ["iterations_started"])
    unit.run.steps_busy += 1  # PENDING
    if hold:
        return step_run
    payload = {"step": step.id, "iteration": iteration, "attempt": attempt}
    if not due:
        payload["due_at"] = step_run.due_at.isoformat()
    unit.event("step.queued", payload)
    if due:
        unit.dispatch(step_run, step.timeout_s)
    return step_run


def cost_add(unit: Unit, step_run: StepRun, cost_usd) -> None:
    """Add what an attempt cost to the step run and to the run (under the run's lock)."""
    cost = Decimal(str(cost_usd or 0))
    if not cost:
        return
    unit.lock_run()  # the event states the run's total
    step_run.cost_usd += cost
    unit.run.cost_usd += cost
    unit.event(
        "run.cost",
        {"step": step_run.step_id, "added_usd": str(cost), "cost_usd": str(unit.run.cost_usd)},
    )


def degrade(unit: Unit, step_run: StepRun) -> None:
    step_run.degraded = unit.run.degraded = True  # written with the run's counters


_OUTCOME_FIELDS = ["output", "error", "error_code", "cost_usd", "degraded"]


def attempt_succeeded(unit: Unit, step_run: StepRun, output, **payload) -> None:
    """Record a successful execution and move the step (and run) on."""
    step = unit.spec.step(step_run.step_id)
    step_run.output = output
    step_run_transition(
        unit, step_run, StepStatus.SUCCEEDED, fields=_OUTCOME_FIELDS,
        **_bounded_output(output), **payload,
    )  # fmt: skip
    _execution_done(unit, step, step_run, StepStatus.SUCCEEDED, output)


def attempt_skipped(unit: Unit, step_run: StepRun, reason: str, **payload) -> None:
    """Record an execution that skipped its work: its step is skipped (a foreach item counts as
    done, with no output)."""
    step = unit.spec.step(step_run.step_id)
    step_run.error = reason
    step_run_transition(
        unit, step_run, StepStatus.SKIPPED, fields=_OUTCOME_FIELDS, reason=reason, **payload
    )
    _execution_done(unit, step, step_run, StepStatus.SKIPPED, None)


def _run_step_of(unit: Unit, step: StepSpec, step_run: StepRun) -> RunStep:
    """The step run's step: as read with it (engine.unit), unless other executions of the step
    (foreach items, repeat iterations) may have changed it since, then read again."""
    if step.foreach is None and step.repeat is None:
        return step_run.run_step
    unit.lock_run()  # the iterations of a foreach finish in parallel
    return RunStep.objects.get(pk=step_run.run_step_id)


def _execution_done(unit: Unit, step: StepSpec, step_run: StepRun, status: str, output) -> None:
    run_step = _run_step_of(unit, step, step_run)
    if step_run.attempt == HOLD_ATTEMPT:  # a step a gate held, answered without running
        step_finish(unit, run_step, status, output=output, error=step_run.error)
    elif step.foreach is not None:
        _foreach_progress(unit, step, run_step)
    elif step.repeat is not None and status == StepStatus.SUCCEEDED:
        _repeat_progress(unit, step, run_step, step_run, output)
    else:
        step_finish(unit, run_step, status, output=output, error=step_run.error)


def attempt_failed(
    unit: Unit, step_run: StepRun, error: str, *, code: str = "failed", retryable=True, **payload
) -> None:
    """Record a failed execution; retry per the step's policy (if retryable) or fail the step."""
    step = unit.spec.step(step_run.step_id)
    step_run.error, step_run.error_code = error, code
    retry = step.retry
    retrying = retryable and step_run.attempt < retry.max_attempts
    if not retrying and step.on_failure == "escalate" and step_run.status == StepStatus.RUNNING:
        # Someone decides instead: retry, skip, fail or override (api.step_retry and its kin).
        wait = Wait(reason=ESCALATED, ref=escalation_ref(step_run))
        step_run_park(unit, step_run, wait, message=error, details={"code": code},
                      fields=_OUTCOME_FIELDS)  # fmt: skip
        return
    step_run_transition(
        unit, step_run, StepStatus.FAILED, fields=_OUTCOME_FIELDS, error=error, code=code, **payload
    )
    run_step = _run_step_of(unit, step, step_run)
    if retrying:
        delay = min(retry.backoff_s * 2 ** (max(step_run.attempt, 1) - 1), retry.max_backoff_s)
        delay *= random.uniform(0.8, 1.0)  # jitter, so failed siblings do not retry in lockstep
        attempt = step_run.attempt + 1
        step_run_new(
            unit, run_step, step, iteration=step_run.iteration, attempt=attempt, delay_s=delay
        )
        return
    step_finish(unit, run_step, StepStatus.FAILED, error=error)


def attempt_waiting(unit: Unit, step_run: StepRun, wait) -> None:
    """Park a running execution on `wait` (contract.Wait)."""
    step_run_park(unit, step_run, wait, fields=_OUTCOME_FIELDS)


def _foreach_progress(unit: Unit, step: StepSpec, run_step: RunStep) -> None:
    run_step.iterations_done += 1
    row_update(run_step, ["iterations_done"])
    if run_step.iterations_started < len(run_step.items):
        step_run_new(unit, run_step, step, iteration=run_step.iterations_started)
    elif run_step.iterations_done == len(run_step.items):
        done = StepRun.objects.filter(run_step=run_step, status__in=FINISHED).order_by("iteration")
        outputs = list(done.values_list("output", flat=True))
        step_finish(unit, run_step, StepStatus.SUCCEEDED, output=outputs)


def _repeat_progress(unit: Unit, step: StepSpec, run_step, step_run, output) -> None:
    repeat = step.repeat
    context = template_context(
        unit.run, unit.spec, step, output=output, iteration=step_run.iteration
    )
    try:
        done = bool(expressions.evaluate(repeat.until, context))
    except expressions.ExpressionError as exc:
        error = f"step '{step.id}' until: {exc}"
        step_finish(unit, run_step, StepStatus.FAILED, error=error)
        return
    if done:
        step_finish(unit, run_step, StepStatus.SUCCEEDED, output=output)
    elif step_run.iteration + 1 >= repeat.max:
        error = f"step '{step.id}' repeat: until not met after {repeat.max} iterations"
        step_finish(unit, run_step, StepStatus.FAILED, error=error)
    else:
        iteration = step_run.iteration + 1
        step_run_new(unit, run_step, step, iteration=iteration, delay_s=repeat.every_s)


def step_finish(
    unit: Unit, run_step: RunStep, status: str, *, output=None, error="", start_dependents=True
) -> None:
    """Close a step of the run (all its executions are done) and start what it unblocks
    (unless the caller, steps_start, goes on to the dependents itself)."""
    run = unit.run
    step = unit.spec.step(run_step.step_id)
    if status == StepStatus.SUCCEEDED and step.set:
        unit.lock_run()  # read-modify-write of the run's state
        try:
            context = template_context(run, unit.spec, step, output=output)
            updates = expressions.render(step.set, context)
        except expressions.ExpressionError as exc:
            status, error = StepStatus.FAILED, f"step '{step.id}' set: {exc}"
        else:
            run.state = {**run.state, **updates}
            row_update(run, ["state"])
    run_step.status, run_step.output, run_step.error = status, output, error
    run_step.finished_at = timezone.now()
    row_update(run_step, ["status", "output", "error", "finished_at"])
    unit.steps[run_step.step_id] = StepState(status, _routes(run_step.routes))
    payload = {"step": step.id, "status": status, **_bounded_output(output)}
    if error:
        payload["reason" if status == StepStatus.SKIPPED else "error"] = error
    unit.event("step.completed", payload)
    if status == StepStatus.FAILED:
        run_abort(unit, "FAILED", reason=error)
        return
    run.progress_done += 1
    if start_dependents:
        steps_start(unit, unit.spec.graph.dependents[step.id])


def _bounded_output(output) -> dict:
    if output is None:
        return {}
    encoded = json.dumps(output, default=str)
    if len(encoded) > EVENT_OUTPUT_MAX_CHARS:
        return {"output_truncated": True}
    return {"output": output}


def lease_for(timeout_s: float) -> timedelta:
    return timedelta(seconds=timeout_s + settings.CHAMELEON["LEASE_GRACE_S"])
