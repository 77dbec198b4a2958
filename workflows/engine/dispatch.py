"""Hand step runs to Celery. Only ever after the transaction that created them commits."""

from celery import current_app
from django.db import transaction

from workflows.models import StepRun

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
        transaction.on_commit(lambda: current_app.send_task(DISPATCH_TASK, args=[messages]))
    elif messages:
        transaction.on_commit(lambda: dispatch_all(messages))


def dispatch_all(messages: list[tuple[str, int, float]]) -> None:
    with current_app.producer_or_acquire() as producer:
        for run_id, step_run_id, timeout_s in messages:
            dispatch(run_id, step_run_id, timeout_s, producer=producer)


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


def resume_on_commit(run_id, step_run_id: int) -> None:
    transaction.on_commit(
        lambda: current_app.send_task(RESUME_STEP_TASK, args=[str(run_id), step_run_id])
    )


def revoke_on_commit(task_ids: list[str]) -> None:
    """Stop queued deliveries of cancelled steps. A step already running finishes and its
    result is discarded by the claim check; terminating its process could kill another task."""
    if task_ids:
        transaction.on_commit(lambda: current_app.control.revoke(task_ids))
