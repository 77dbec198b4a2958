"""Hand step runs to Celery. Only ever after the transaction that created them commits."""

from celery import current_app
from django.db import transaction

from workflows.models import StepRun

EXECUTE_STEP_TASK = "workflows.execute_step"
RESUME_STEP_TASK = "workflows.resume_step"


def dispatch_on_commit(step_run: StepRun, timeout_s: float) -> None:
    run_id, step_run_id = str(step_run.run_id), step_run.pk
    transaction.on_commit(lambda: dispatch(run_id, step_run_id, timeout_s))


def dispatch(run_id: str, step_run_id: int, timeout_s: float) -> None:
    # The soft limit raises inside the step (recorded as a timeout); the hard limit kills a step
    # that ignores it. Both need the prefork pool; other pools rely on the tools' own timeouts.
    current_app.send_task(
        EXECUTE_STEP_TASK,
        args=[run_id, step_run_id],
        soft_time_limit=timeout_s,
        time_limit=timeout_s + 10,
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
