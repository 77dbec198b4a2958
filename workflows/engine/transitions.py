"""The run state machine: every status change goes through `run_transition`."""

from django.db import transaction
from django.utils import timezone

from config.errors import Conflict
from workflows import metrics
from workflows.engine.events import events_append
from workflows.engine.locks import run_lock
from workflows.engine.rows import row_update
from workflows.models import RUN_TERMINAL, RUN_TRANSITIONS, Run, RunStatus


def run_transition(run: Run, to: str, *, reason: str = "", **payload) -> None:
    """Move `run` to status `to` and record it, or raise Conflict and write nothing.

    Call inside engine.locks.run_locked or step_run_locked; it takes the run's row lock.
    """
    run_lock(run)
    source = run.status
    if to not in RUN_TRANSITIONS[source]:
        raise Conflict(
            f"Run {run.pk} cannot go from {source} to {to}.",
            code="invalid_transition",
            details={"status": source, "requested": to},
        )
    now = timezone.now()
    run.status = to
    fields = ["status"]
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
    events_append(run, [("run.status", event)])
