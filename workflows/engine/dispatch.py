"""Hand step runs to Celery. Only ever after the transaction that created them commits."""

import functools
import logging
from urllib.parse import urlsplit

import redis
from celery import current_app
from django.db import DatabaseError, transaction
from kombu.exceptions import KombuError

from workflows.models import StepRun, StepStatus

logger = logging.getLogger(__name__)

EXECUTE_STEP_TASK = "workflows.execute_step"
RESUME_STEP_TASK = "workflows.resume_step"
DISPATCH_TASK = "workflows.dispatch_steps"


DISPATCH_HERE_MAX = 100  # more step runs than this are published by a worker, not the caller


def dispatch_on_commit(dispatches: list[tuple[StepRun, float]]) -> None:
    """Send the step runs to Celery once the transaction commits, through one producer (taking
    one from the pool costs a quarter of a send, and a run can start thousands of steps).

    A plan bigger than DISPATCH_HERE_MAX goes to a worker as one message that publishes them
    there: publishing 5,000 messages takes seconds, which an API call starting a run should not
    wait for. (If that message is lost, the sweep re-sends its step runs.)"""
    messages = [(str(step_run.run_id), step_run.pk, timeout) for step_run, timeout in dispatches]
    if len(messages) > DISPATCH_HERE_MAX:
        transaction.on_commit(lambda: _sent_or_marked(_to_a_worker, messages))
    elif messages:
        transaction.on_commit(lambda: dispatch_all(messages))


def dispatch_all(messages: list[tuple[str, int, float]]) -> None:
    """Publish the step runs from here (what the dispatch_steps task does for big plans)."""
    _sent_or_marked(_here, messages)


def _to_a_worker(messages) -> None:
    current_app.send_task(DISPATCH_TASK, args=[messages])


def _here(messages) -> None:
    with current_app.producer_or_acquire() as producer:
        for run_id, step_run_id, timeout_s in messages:
            dispatch(run_id, step_run_id, timeout_s, producer=producer)


def _sent_or_marked(send, messages) -> None:
    """Send; if the broker cannot be reached, mark the step runs as not dispatched, so that the
    sweep (every second) sends them as soon as it is back, not CHAMELEON_REDISPATCH_AFTER_S
    later. The transaction that made them has committed either way."""
    try:
        send(messages)
    except (KombuError, redis.RedisError, OSError) as exc:
        logger.warning(
            "dispatching %d step runs failed, the sweep resends them: %s", len(messages), exc
        )
        step_run_ids = [step_run_id for _, step_run_id, _ in messages]
        try:
            StepRun.objects.filter(pk__in=step_run_ids, status=StepStatus.PENDING).update(
                dispatched_at=None
            )
        except DatabaseError:  # then they are resent when their dispatch is stale
            logger.exception("marking %d step runs for the sweep failed", len(messages))


def dispatch(run_id: str, step_run_id: int, timeout_s: float, producer=None) -> None:
    # Inline steps run in the task: the soft limit raises inside one (recorded as a timeout),
    # the hard limit kills one that ignores it (prefork pool). Leased steps leave the task at
    # once for engine.calls, which times them out itself.
    current_app.send_task(
        EXECUTE_STEP_TASK,
        args=[run_id, step_run_id],
        soft_time_limit=timeout_s,
        time_limit=timeout_s + 10,
        producer=producer,
    )


def broker_redis() -> redis.Redis | None:
    """The broker's Redis, or None when the broker is not Redis (the in-memory one lives and
    dies with its process, so it cannot lose messages behind our back)."""
    url = current_app.conf.broker_url
    return _redis_client(url) if urlsplit(url).scheme in ("redis", "rediss") else None


@functools.cache
def _redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def resume_on_commit(run_id, step_run_id: int) -> None:
    transaction.on_commit(
        lambda: current_app.send_task(RESUME_STEP_TASK, args=[str(run_id), step_run_id])
    )


def revoke_on_commit(task_ids: list[str]) -> None:
    """Stop queued deliveries of cancelled steps. A step already running finishes and its
    result is discarded by the claim check; terminating its process could kill another task."""
    if task_ids:
        transaction.on_commit(lambda: current_app.control.revoke(task_ids))
