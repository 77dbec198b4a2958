"""The state machines of runs and step runs: every status change goes through one function here,
which checks the table in workflows.models, writes the row and records the event."""

from django.db import transaction
from django.utils import timezone

from config.errors import Conflict
from workflows import metrics
from workflows.engine.plugin_events import event_writer
from workflows.engine.registry import run_finished_handlers
from workflows.engine.rows import row_update
from workflows.engine.unit import Unit
from workflows.models import (
    RUN_TERMINAL,
    RUN_TRANSITIONS,
    STEP_BUSY,
    STEP_RUN_TRANSITIONS,
    RunStatus,
    StepRun,
    StepStatus,
)

STEP_TERMINAL = frozenset(status for status, to in STEP_RUN_TRANSITIONS.items() if not to)
# The one way out of an ended run, beside the table: an operator's explicit retry of a failed
# run (engine.retry). A cancelled run stays cancelled; nothing else reopens a run.
RUN_RETRY_TRANSITIONS: dict[str, frozenset[str]] = {
    RunStatus.FAILED: frozenset({RunStatus.RUNNING}),
}


def run_transition(
    unit: Unit, to: str, *, reason: str = "", retry: bool = False, **payload
) -> None:
    """Move the unit's run to status `to` and record it, or raise Conflict and write nothing.
    `retry`: the move is an explicit retry, checked against RUN_RETRY_TRANSITIONS instead."""
    unit.lock_run()
    run = unit.run
    source = run.status
    _check(RUN_RETRY_TRANSITIONS if retry else RUN_TRANSITIONS, source, to, f"Run {run.pk}")
    now = timezone.now()
    run.status = to
    fields = ["status"]
    if source in RUN_TERMINAL:  # reopened by a retry: no longer finished, nor failed
        run.finished_at, run.error = None, ""
        fields += ["finished_at", "error"]
    if to == RunStatus.RUNNING and run.started_at is None:
        run.started_at = now
        fields.append("started_at")
    if to in RUN_TERMINAL:
        run.finished_at = now
        fields.append("finished_at")
        workflow_slug = run.workflow.slug
        transaction.on_commit(lambda: metrics.run_finished(workflow_slug, to))
    row_update(run, fields)
    event = {"from": source, "to": to, **payload}
    if reason:
        event["reason"] = reason
    unit.event("run.status", event)
    if to in RUN_TERMINAL:
        _holds_release_all(unit)
        for handler in run_finished_handlers():  # their events follow the end's
            handler(str(run.pk), to, event_writer(unit))


def step_run_transition(unit: Unit, step_run: StepRun, to: str, *, fields=(), **payload) -> None:
    """Move a step run to `to`, saving `fields` (set by the caller) with its status, keeping
    the run's count of busy step runs, and record `step.<...>` with `payload`; or raise Conflict
    and change nothing."""
    source = step_run.status
    _check(STEP_RUN_TRANSITIONS, source, to, f"Step run {step_run.pk} ({step_run.step_id})")
    unit.run.steps_busy += (to in STEP_BUSY) - (source in STEP_BUSY)
    step_run.status = to
    written = ["status", *fields]
    if source == StepStatus.RUNNING and to != StepStatus.RUNNING:
        step_run.lease_until = None
        written.append("lease_until")
    if source == StepStatus.RUNNING and step_run.pk not in unit.holds_kept:
        # The attempt is over (a takeover too): what it held of the budget is released; what
        # it spent is in the cost recorded with it.
        hold_release(unit, step_run)
        written.append("reserved_usd")
    if to in STEP_TERMINAL:
        step_run.finished_at = timezone.now()
        written.append("finished_at")
    row_update(step_run, list(dict.fromkeys(written)))
    name = "started" if to == StepStatus.RUNNING else to.lower()
    unit.event(f"step.{name}", {**_step_ref(step_run), **payload})


def hold_release(unit: Unit, step_run: StepRun) -> None:
    """Give the run back what the step run holds of its budget (engine.budget)."""
    if step_run.reserved_usd:
        unit.lock_run()
        unit.run.reserved_usd -= step_run.reserved_usd
        step_run.reserved_usd = 0


def _holds_release_all(unit: Unit) -> None:
    """An ended run spends nothing more: give back every hold its step runs keep (calls timed
    out in flight; a late outcome still adds its cost). Step runs another transaction holds
    release their own when they are recorded (skipped here: the run's lock is held)."""
    held = StepRun.objects.select_for_update(skip_locked=True).filter(
        run_id=unit.run.pk, reserved_usd__gt=0
    )
    rows = list(held.values_list("pk", "reserved_usd"))
    if rows:
        unit.run.reserved_usd -= sum(amount for _, amount in rows)
        StepRun.objects.filter(pk__in=[pk for pk, _ in rows]).update(reserved_usd=0)


def records_save(records) -> None:
    """Save the rows a plug-in's outcome carries (its LLM calls, say), in the recording
    transaction, one INSERT per model."""
    by_model = {}
    for record in records:
        by_model.setdefault(type(record), []).append(record)
    for model, rows in by_model.items():
        model.objects.bulk_create(rows)


def _check(table: dict, source: str, to: str, what: str) -> None:
    if to not in table.get(source, ()):
        raise Conflict(
            f"{what} cannot go from {source} to {to}.",
            code="invalid_transition",
            details={"status": source, "requested": to},
        )


def _step_ref(step_run: StepRun) -> dict:
    return {"step": step_run.step_id, "iteration": step_run.iteration, "attempt": step_run.attempt}
