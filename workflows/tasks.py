"""Celery tasks: take ids, call one engine function. Redelivery is expected and harmless."""

from celery import shared_task

from workflows.engine import runner, sweeps


@shared_task(name="workflows.execute_step", bind=True)
def execute_step(self, run_id: str, step_run_id: int) -> str:
    return runner.step_run_execute(
        run_id=run_id,
        step_run_id=step_run_id,
        worker=self.request.hostname or "",
        task_id=self.request.id or "",
    )


@shared_task(name="workflows.resume_step")
def resume_step(run_id: str, step_run_id: int) -> bool:
    return runner.step_run_resume(run_id=run_id, step_run_id=step_run_id)


@shared_task(name="workflows.steps_dispatch_due")
def steps_dispatch_due() -> int:
    return sweeps.steps_dispatch_due() + sweeps.steps_wake_due()


@shared_task(name="workflows.steps_recover_expired")
def steps_recover_expired() -> int:
    return sweeps.steps_recover_expired()
