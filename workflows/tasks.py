"""Celery tasks: take ids, call one engine function. Redelivery is expected and harmless."""

from celery import shared_task
from celery.signals import task_failure, worker_process_shutdown, worker_shutdown
from django.conf import settings
from django.db import connections

from config.errors import database_unreachable
from workflows import schedules
from workflows.engine import budget, dispatch, runner, steps, sweeps
from workflows.engine.calls import calls

# A delivery that found the database unreachable tries again after 0.5 s, 1 s, 2 s, ... up to
# 10 s apart, for about two minutes; then the sweep's resend takes over.
DATABASE_RETRY_S, DATABASE_RETRY_MAX_S, DATABASE_RETRIES = 0.5, 10, 16


@shared_task(name="workflows.execute_step", bind=True, max_retries=DATABASE_RETRIES)
def execute_step(self, run_id: str, step_run_id: int) -> str:
    """Claim the step run; run it here if it is inline, else hand it to this process's pool of
    calls in flight (waiting first for room in it, so a claim never waits unexecuted)."""
    calls.slot()
    try:
        claimed = runner.step_run_claim(
            run_id=run_id,
            step_run_id=step_run_id,
            worker=self.request.hostname or "",
            task_id=self.request.id or "",
        )
    except BaseException as exc:
        calls.release()
        if database_unreachable(exc):  # back in seconds, rather than at the sweep's resend
            connections.close_all()  # the retry connects afresh (see _drop_broken_connections)
            countdown = min(DATABASE_RETRY_S * 2**self.request.retries, DATABASE_RETRY_MAX_S)
            raise self.retry(countdown=countdown) from exc
        raise
    if not isinstance(claimed, runner.Claim):
        calls.release()
        return claimed
    try:
        calls.submit(claimed)
    except BaseException:  # the claim is recovered when its lease runs out
        calls.release()
        raise
    return "submitted"


@shared_task(name="workflows.dispatch_steps")
def dispatch_steps(messages: list) -> int:
    """Publish a big plan's step runs (engine.dispatch.dispatch_on_commit)."""
    dispatch.dispatch_all(messages)
    return len(messages)


@shared_task(name="workflows.resume_step")
def resume_step(run_id: str, step_run_id: int) -> bool:
    return steps.step_run_wake(run_id=run_id, step_run_id=step_run_id)


@shared_task(name="workflows.steps_dispatch_due")
def steps_dispatch_due() -> int:
    resent = sweeps.steps_resend_after_broker_loss()
    return resent + sweeps.steps_dispatch_due() + sweeps.steps_wake_due()


@shared_task(name="workflows.steps_recover_expired")
def steps_recover_expired() -> int:
    return sweeps.steps_recover_expired() + budget.holds_release_stale()


@shared_task(name=schedules.FIRE_TASK)
def schedule_fire(schedule_id: int) -> str | None:
    """Beat's fire of a schedule: start its tick's run (a second fire of the tick finds it)."""
    run = schedules.schedule_fire(schedule_id=schedule_id)
    return str(run.pk) if run else None


@worker_process_shutdown.connect  # a prefork child
@worker_shutdown.connect  # a worker whose pool runs in its own process (solo, threads)
def _let_calls_finish(**kwargs) -> None:
    calls.wait(settings.CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT)


@task_failure.connect
def _drop_broken_connections(exception=None, **kwargs) -> None:
    """A task that failed because the database went away leaves its process a dead connection,
    which Django reuses until something closes it (Celery closes connections only every
    CELERY_DB_REUSE_MAX tasks): close it, so the next task connects afresh."""
    if exception is not None and database_unreachable(exception):
        connections.close_all()
