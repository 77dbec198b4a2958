"""Schedules: a workflow started on a cron expression or an interval, with fixed inputs.

Beat only fires; which run a fire starts is decided here. A fire belongs to its tick (the latest
scheduled time at or before it) and starts its run under the key `schedule:<id>:<tick>`, so a
second beat running by mistake, or a redelivered message, finds the tick's run instead of
starting another (run_start returns the run a key already has).
"""

import json
import logging
from datetime import UTC, datetime, timedelta

from celery.schedules import crontab
from django.db import transaction
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

from accounts.audit import audit_record
from config.errors import ChameleonError, InvalidInput
from workflows.engine.api import run_start
from workflows.models import Run, Schedule, Workflow
from workflows.selectors import workflow_permits
from workflows.spec import inputs_resolve, spec_for_version

logger = logging.getLogger(__name__)

FIRE_TASK = "workflows.schedule_fire"
CRON_FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")
MAX_INTERVAL_S = 366 * 24 * 3600
# Far enough back to find the last tick of any expression that matches at all (29 February
# on a given weekday recurs within 28 years).
_CRON_LOOKBACK_DAYS = 29 * 366


def cron_parse(expression: str) -> crontab:
    """Celery's crontab for a five-field expression (UTC); raise InvalidInput naming `cron`."""
    fields = expression.split()
    if len(fields) != len(CRON_FIELDS):
        raise _cron_invalid(f"expected 5 fields (minute hour day month weekday), got {len(fields)}")
    try:
        schedule = crontab(**dict(zip(CRON_FIELDS, fields, strict=True)))
    except (ValueError, TypeError) as exc:
        raise _cron_invalid(str(exc)) from None
    if _cron_tick(schedule, datetime.now(UTC)) is None:
        raise _cron_invalid("it never matches a date")
    return schedule


def _cron_invalid(reason: str) -> InvalidInput:
    return InvalidInput(f"Invalid cron expression: {reason}.", details={"cron": reason})


def _cron_tick(schedule: crontab, now: datetime) -> datetime | None:
    """The latest minute at or before `now` that `schedule` matches, as celery's beat reads it
    (day of month and weekday must both match); None if none within the lookback."""
    now = now.astimezone(UTC).replace(second=0, microsecond=0)
    for back in range(_CRON_LOOKBACK_DAYS):
        day = now.date() - timedelta(days=back)
        if not (
            day.month in schedule.month_of_year
            and day.day in schedule.day_of_month
            and day.isoweekday() % 7 in schedule.day_of_week  # celery: 0 is Sunday
        ):
            continue
        for hour in sorted(schedule.hour, reverse=True):
            if back == 0 and hour > now.hour:
                continue
            minutes = [m for m in schedule.minute if back or hour < now.hour or m <= now.minute]
            if minutes:
                return datetime(day.year, day.month, day.day, hour, max(minutes), tzinfo=UTC)
    return None


def schedule_tick(schedule: Schedule, now: datetime) -> datetime:
    """The tick a fire at `now` belongs to: the latest scheduled time at or before it.

    Intervals count from the Unix epoch, so every beat's fire in the same interval agrees.
    """
    if schedule.cron:
        tick = _cron_tick(cron_parse(schedule.cron), now)
        assert tick is not None, "schedule_save refuses expressions that never match"
        return tick
    seconds = int(now.timestamp()) // schedule.interval_seconds * schedule.interval_seconds
    return datetime.fromtimestamp(seconds, UTC)


@transaction.atomic
def schedule_save(
    *,
    schedule: Schedule | None = None,
    name: str,
    workflow: Workflow,
    cron: str = "",
    interval_seconds: int | None = None,
    inputs: dict | None = None,
    enabled: bool = True,
    by,
) -> Schedule:
    """Create (no `schedule`) or change a schedule and its beat entry; `by` becomes its owner.

    Raise InvalidInput naming each bad field: the cron expression or interval (exactly one),
    inputs the workflow's current version refuses, a workflow `by` may not run.
    """
    cron = " ".join((cron or "").split())
    inputs = {} if inputs is None else inputs
    errors: dict[str, str] = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = "is required"
    elif Schedule.objects.filter(name=name).exclude(pk=schedule.pk if schedule else None).exists():
        errors["name"] = "another schedule has this name"
    if bool(cron) == (interval_seconds is not None):
        errors["cron"] = "give a cron expression or an interval in seconds (one of them)"
    elif cron:
        try:
            cron_parse(cron)
        except InvalidInput as exc:
            errors.update(exc.details)
    elif not 1 <= interval_seconds <= MAX_INTERVAL_S:
        errors["interval_seconds"] = f"must be from 1 to {MAX_INTERVAL_S}"
    if not workflow_permits(by, workflow, "run_workflow"):
        errors["workflow"] = "you may not start runs of this workflow"
    elif workflow.current_version is None:
        errors["workflow"] = "has no published version"
    else:
        try:
            inputs_resolve(spec_for_version(workflow.current_version), inputs)
        except InvalidInput as exc:
            errors.update(exc.details)
    if errors:
        first = next(iter(errors.items()))
        raise InvalidInput(f"Invalid schedule: {first[0]} {first[1]}", details=errors)

    if schedule is None:
        schedule, before, action = Schedule(), None, "schedule.create"
    else:
        schedule = Schedule.objects.select_for_update().get(pk=schedule.pk)
        before, action = _described(schedule), "schedule.change"
    schedule.name, schedule.workflow, schedule.cron = name, workflow, cron
    schedule.interval_seconds = None if cron else interval_seconds
    schedule.inputs, schedule.enabled, schedule.owner = inputs, enabled, by
    schedule.save()
    schedule.periodic_task = _periodic_task_write(schedule)
    schedule.save(update_fields=["periodic_task", "updated_at"])
    audit_record(actor=by, action=action, obj=schedule, before=before, after=_described(schedule))
    return schedule


@transaction.atomic
def schedule_delete(*, schedule: Schedule, by) -> None:
    """Delete the schedule and its beat entry; its runs stay."""
    schedule = Schedule.objects.select_for_update().get(pk=schedule.pk)
    audit_record(actor=by, action="schedule.delete", obj=schedule, before=_described(schedule))
    task = schedule.periodic_task
    schedule.delete()
    if task is not None:
        task.delete()


def _described(schedule: Schedule) -> dict:
    return {
        "name": schedule.name,
        "workflow": schedule.workflow.slug,
        "cron": schedule.cron,
        "interval_seconds": schedule.interval_seconds,
        "inputs": schedule.inputs,
        "enabled": schedule.enabled,
        "owner": schedule.owner.get_username(),
    }


def _periodic_task_write(schedule: Schedule) -> PeriodicTask:
    """Write the schedule's beat entry (DatabaseScheduler sees the change on its next sync)."""
    task = schedule.periodic_task or PeriodicTask(name=f"schedule:{schedule.pk}", task=FIRE_TASK)
    task.kwargs = json.dumps({"schedule_id": schedule.pk})
    task.description = f"Schedule '{schedule.name}' of {schedule.workflow.slug}"
    task.enabled = schedule.enabled
    task.crontab = task.interval = None
    if schedule.cron:
        fields = dict(zip(CRON_FIELDS, schedule.cron.split(), strict=True))
        task.crontab, _ = CrontabSchedule.objects.get_or_create(**fields, timezone="UTC")
    else:
        task.interval, _ = IntervalSchedule.objects.get_or_create(
            every=schedule.interval_seconds, period=IntervalSchedule.SECONDS
        )
    task.save()  # PeriodicTask.save also tells the schedulers that entries changed
    return task


@transaction.atomic
def schedule_fire(*, schedule_id: int, now: datetime | None = None) -> Run | None:
    """Start the run of the tick `now` belongs to, as the schedule's owner; return it.

    A fire of a tick that has its run returns that run. Nothing starts for a schedule deleted
    or disabled since beat read it; a refusal (paused workflow, inputs a newer version refuses,
    an owner who may no longer run it) is logged and kept on the schedule as `last_error`.
    """
    schedule = Schedule.objects.select_related("workflow", "owner").filter(pk=schedule_id).first()
    if schedule is None or not schedule.enabled:
        return None
    tick = schedule_tick(schedule, now or datetime.now(UTC))
    owner = schedule.owner
    try:
        if not owner.is_active or not workflow_permits(owner, schedule.workflow, "run_workflow"):
            raise InvalidInput(f"{owner.get_username()} may no longer start runs of this workflow.")
        run, created = run_start(
            workflow=schedule.workflow,
            inputs=schedule.inputs,
            started_by=owner,
            idempotency_key=f"schedule:{schedule.pk}:{tick.isoformat()}",
            ctx={"schedule": schedule.name, "tick": tick.isoformat()},
        )
    except ChameleonError as exc:
        logger.warning("Schedule %s did not start its %s run: %s", schedule.name, tick, exc)
        error = f"{tick.isoformat()}: {exc.message}"[:2000]
        Schedule.objects.filter(pk=schedule.pk).update(last_error=error)
        return None
    if created:
        Schedule.objects.filter(pk=schedule.pk).update(last_run=run, last_error="")
    return run
