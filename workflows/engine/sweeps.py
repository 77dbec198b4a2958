"""Periodic sweeps, called by beat and by `manage.py sweep`. Each returns how many rows it moved.

Waits that outlive a moment (retry backoff, `repeat.every_s`, `sleep`) are rows with a due time,
fired here, rather than broker ETAs: Redis redelivers an ETA task held past its visibility timeout.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from workflows.engine.dispatch import broker_redis, dispatch_on_commit
from workflows.engine.runner import step_run_execute
from workflows.engine.steps import step_run_wake
from workflows.models import RUN_TERMINAL, StepRun, StepStatus
from workflows.spec import spec_for_version

logger = logging.getLogger(__name__)
BATCH = 500
# A key in the broker's Redis that goes missing with its messages (a restart without
# persistence, a flush, a failover to an empty replica).
BROKER_MARK = "chameleon:broker-epoch"


def steps_dispatch_due() -> int:
    """Dispatch pending step runs that are due and not dispatched recently (lost publishes too)."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.CHAMELEON["REDISPATCH_AFTER_S"])
    due = Q(status=StepStatus.PENDING, due_at__lte=now) & (
        Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=stale)
    )
    return _redispatch(due, now)


def steps_resend_after_broker_loss() -> int:
    """If the broker has lost its contents, mark every pending or running step run as never
    dispatched, so the sweeps send them again now rather than REDISPATCH_AFTER_S after their lost
    messages (a second delivery of one that was not lost is harmless). Return how many."""
    broker = broker_redis()
    if broker is None or broker.exists(BROKER_MARK):
        return 0
    forgotten = StepRun.objects.filter(
        status__in=(StepStatus.PENDING, StepStatus.RUNNING), dispatched_at__isnull=False
    ).update(dispatched_at=None)
    broker.set(BROKER_MARK, timezone.now().isoformat())  # only once they are marked
    if forgotten:
        logger.warning("the broker lost its messages: resending %d step runs", forgotten)
    return forgotten


def steps_recover_expired() -> int:
    """Re-dispatch running step runs whose lease expired: their worker died or hung."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.CHAMELEON["REDISPATCH_AFTER_S"])
    expired = Q(status=StepStatus.RUNNING, lease_until__lt=now) & (
        Q(dispatched_at__isnull=True) | Q(dispatched_at__lt=stale)
    )
    return _redispatch(expired, now)


def _redispatch(condition: Q, now) -> int:
    with transaction.atomic():
        rows = list(
            StepRun.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(condition)
            .select_related("run__version")[:BATCH]
        )
        dispatch_on_commit(
            [
                (step_run, spec_for_version(step_run.run.version).step(step_run.step_id).timeout_s)
                for step_run in rows
            ]
        )
        StepRun.objects.filter(pk__in=[row.pk for row in rows]).update(dispatched_at=now)
    return len(rows)


def steps_wake_due() -> int:
    """Finish waiting step runs whose timer is due or whose child run has ended."""
    now = timezone.now()
    waiting = StepRun.objects.filter(status=StepStatus.WAITING).filter(
        Q(wake_at__lte=now) | Q(wake_at__isnull=True, child_run__status__in=RUN_TERMINAL)
    )
    woken = 0
    for run_id, step_run_id in waiting.values_list("run_id", "pk")[:BATCH]:
        try:
            woken += step_run_wake(run_id=run_id, step_run_id=step_run_id)
        except Exception:
            logger.exception("waking step run %s failed", step_run_id)
    return woken


def steps_execute_due(*, worker: str, limit: int = BATCH) -> int:
    """Execute due step runs in this process, oldest first; return how many ran.

    For a process that must act as its own worker: `run_workflow --inline` on the in-memory
    broker, whose messages no other process sees, and in-process tests.
    """
    due = (
        StepRun.objects.filter(status=StepStatus.PENDING, due_at__lte=timezone.now())
        .order_by("due_at", "pk")
        .values_list("run_id", "pk")[:limit]
    )
    executed = 0
    for run_id, step_run_id in due:
        outcome = step_run_execute(run_id=run_id, step_run_id=step_run_id, worker=worker)
        executed += outcome != "skipped"
    return executed
