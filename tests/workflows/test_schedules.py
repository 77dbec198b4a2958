"""Schedules: beat fires, the tick decides the run (one per tick however many beats fire it),
runs start as whoever scheduled them, and the admin and the embedded `up` both drive them."""

import json
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import pytest
from django_celery_beat.models import PeriodicTask

from accounts.models import AuditEntry
from config.errors import InvalidInput
from tests.test_up import ROOT, _embedded_env, _free_port, _up
from workflows.models import Run, Schedule
from workflows.schedules import schedule_delete, schedule_fire, schedule_save, schedule_tick

pytestmark = pytest.mark.django_db

GREETER = """slug: greeter
inputs:
  name: {type: string, required: true}
steps:
  - id: greet
    tool: template.render
    with: {template: "Hello, {{ inputs.name }}!"}
"""


@pytest.fixture
def greeter(make_workflow):
    return make_workflow(GREETER)


def _at(hour, minute, second=0):
    return datetime(2026, 12, 1, hour, minute, second, tzinfo=UTC)


def _scheduled(greeter, operator, **how):
    how = how or {"cron": "*/5 * * * *"}
    return schedule_save(
        name="nightly", workflow=greeter, inputs={"name": "Ada"}, by=operator, **how
    )


def test_two_fires_of_the_same_tick_start_one_run_and_the_next_tick_another(greeter, operator):
    schedule = _scheduled(greeter, operator)

    first = schedule_fire(schedule_id=schedule.pk, now=_at(10, 5, 1))
    again = schedule_fire(schedule_id=schedule.pk, now=_at(10, 9, 59))  # a second beat, late
    later = schedule_fire(schedule_id=schedule.pk, now=_at(10, 10, 0))

    assert first.pk == again.pk
    assert later.pk != first.pk
    assert Run.objects.filter(workflow=greeter).count() == 2
    assert first.idempotency_key == f"schedule:{schedule.pk}:2026-12-01T10:05:00+00:00"


def test_an_interval_ticks_from_the_epoch_so_every_beat_agrees(greeter, operator):
    schedule = _scheduled(greeter, operator, interval_seconds=60)

    ticks = [schedule_tick(schedule, _at(10, 0, s)) for s in (0, 30, 59)]

    assert ticks == [_at(10, 0)] * 3
    assert schedule_tick(schedule, _at(10, 1, 0)) == _at(10, 1)


@pytest.mark.parametrize(
    ("cron", "now", "tick"),
    [
        ("0 9 * * mon-fri", _at(8, 0), datetime(2026, 11, 30, 9, 0, tzinfo=UTC)),  # Tue -> Mon
        ("0 9 * * mon-fri", _at(9, 0), _at(9, 0)),
        ("30 */6 * * *", _at(5, 59), _at(0, 30)),
        ("30 */6 * * *", _at(0, 29), datetime(2026, 11, 30, 18, 30, tzinfo=UTC)),
        ("0 0 29 2 *", _at(0, 0), datetime(2024, 2, 29, tzinfo=UTC)),
        ("0 0 1 * sun", _at(0, 0), datetime(2026, 11, 1, tzinfo=UTC)),  # 1 Nov 2026: Sunday
    ],
)
def test_a_cron_tick_is_the_latest_matching_minute_at_or_before_now(
    greeter, operator, cron, now, tick
):
    assert schedule_tick(_scheduled(greeter, operator, cron=cron), now) == tick


@pytest.mark.django_db(transaction=True)
def test_two_beats_firing_the_same_tick_at_once_start_one_run(greeter, operator):
    schedule = _scheduled(greeter, operator)
    barrier, started = threading.Barrier(2, timeout=10), []

    def fire():
        from django.db import connection

        try:
            barrier.wait()
            started.append(schedule_fire(schedule_id=schedule.pk, now=_at(10, 5, 1)).pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=fire) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert len(started) == 2 and started[0] == started[1]
    assert Run.objects.filter(workflow=greeter).count() == 1


def test_a_schedule_run_starts_as_its_owner_and_names_the_schedule(greeter, operator):
    schedule = _scheduled(greeter, operator)

    run = schedule_fire(schedule_id=schedule.pk, now=_at(10, 5))

    assert run.started_by == operator
    assert run.ctx["schedule"] == "nightly" and run.ctx["started_by"] == operator.username
    assert run.inputs == {"name": "Ada"}
    schedule.refresh_from_db()
    assert schedule.last_run_id == run.pk


@pytest.mark.parametrize(
    ("how", "field"),
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * *"}, "cron"),
        ({"cron": "0 0 31 2 *"}, "cron"),  # never
        ({"cron": "* * * * *", "interval_seconds": 60}, "cron"),
        ({}, "cron"),
        ({"interval_seconds": 0}, "interval_seconds"),
        ({"cron": "* * * * *", "inputs": {"name": 3}}, "inputs.name"),
        ({"cron": "* * * * *", "inputs": {}}, "inputs.name"),
        ({"cron": "* * * * *", "inputs": {"name": "x", "extra": 1}}, "inputs.extra"),
    ],
)
def test_a_bad_schedule_is_refused_naming_its_field(greeter, operator, how, field):
    how = {"cron": "", "inputs": {"name": "Ada"}, **how}
    with pytest.raises(InvalidInput) as refused:
        schedule_save(name="bad", workflow=greeter, by=operator, **how)

    assert field in refused.value.details
    assert (
        not Schedule.objects.exists()
        and not PeriodicTask.objects.filter(task="workflows.schedule_fire").exists()
    )


def test_only_someone_who_may_run_the_workflow_schedules_it(greeter, make_user):
    with pytest.raises(InvalidInput) as refused:
        schedule_save(name="x", workflow=greeter, cron="* * * * *", inputs={"name": "a"},
                      by=make_user("pilot"))  # fmt: skip

    assert "workflow" in refused.value.details


def test_the_beat_entry_follows_the_schedule_and_every_change_is_audited(greeter, operator):
    schedule = _scheduled(greeter, operator, cron="0 9 * * mon-fri")
    task = PeriodicTask.objects.get(pk=schedule.periodic_task_id)
    assert (task.task, json.loads(task.kwargs), task.enabled) == (
        "workflows.schedule_fire", {"schedule_id": schedule.pk}, True,
    )  # fmt: skip
    crontab = task.crontab
    assert (crontab.minute, crontab.hour, crontab.day_of_week) == ("0", "9", "mon-fri")

    schedule_save(schedule=schedule, name="nightly", workflow=greeter, interval_seconds=90,
                  inputs={"name": "Ada"}, enabled=False, by=operator)  # fmt: skip
    task.refresh_from_db()
    assert (task.crontab, task.interval.every, task.enabled) == (None, 90, False)

    schedule_delete(schedule=schedule, by=operator)
    assert not PeriodicTask.objects.filter(pk=task.pk).exists()
    entries = AuditEntry.objects.filter(object_type="workflows.schedule")
    actions = sorted(entries.values_list("action", flat=True))
    assert actions == ["schedule.change", "schedule.create", "schedule.delete"]


def test_a_disabled_or_deleted_schedule_starts_nothing(greeter, operator):
    schedule = _scheduled(greeter, operator)
    schedule_save(schedule=schedule, name="nightly", workflow=greeter, cron="* * * * *",
                  inputs={"name": "Ada"}, enabled=False, by=operator)  # fmt: skip

    assert schedule_fire(schedule_id=schedule.pk) is None
    assert schedule_fire(schedule_id=schedule.pk + 1000) is None
    assert not Run.objects.exists()


def test_a_refused_start_is_kept_on_the_schedule(greeter, operator):
    schedule = _scheduled(greeter, operator)
    greeter.paused = True
    greeter.save(update_fields=["paused"])

    assert schedule_fire(schedule_id=schedule.pk, now=_at(10, 5)) is None

    schedule.refresh_from_db()
    assert "paused" in schedule.last_error and schedule.last_error.startswith("2026-12-01T10:05")


@pytest.fixture
def staff_operator(client, operator):
    operator.is_staff = True  # as the demo operator is
    operator.save(update_fields=["is_staff"])
    client.force_login(operator)
    return operator


def _form(greeter, **changes):
    fields = {"name": "hourly", "workflow": greeter.pk, "cron": "0 * * * *"}
    return {
        **fields,
        "interval_seconds": "",
        "inputs": '{"name": "Ada"}',
        "enabled": "on",
        **changes,
    }


def test_an_operator_schedules_a_workflow_in_the_admin(client, greeter, staff_operator):
    operator = staff_operator
    response = client.post("/admin/workflows/schedule/add/", _form(greeter))

    assert response.status_code == 302, response.content.decode()
    schedule = Schedule.objects.get(name="hourly")
    assert (schedule.owner, schedule.cron) == (operator, "0 * * * *")
    assert schedule.inputs == {"name": "Ada"}
    assert schedule.periodic_task.crontab.minute == "0"
    page = client.get(f"/admin/workflows/schedule/{schedule.pk}/change/")
    assert page.status_code == 200 and "0 * * * *" in page.content.decode()
    assert client.get("/admin/workflows/schedule/").status_code == 200


def test_the_admin_refuses_a_cron_that_does_not_parse_with_the_reason(
    client, greeter, staff_operator
):
    response = client.post("/admin/workflows/schedule/add/", _form(greeter, cron="61 * * * *"))

    assert response.status_code == 200
    assert "Invalid end range: 61 &gt; 59" in response.content.decode()
    assert not Schedule.objects.exists()


CREATE = """
from django.contrib.auth import get_user_model
from workflows.models import Workflow
from workflows.schedules import schedule_save
operator = get_user_model().objects.get(username="operator")
schedule_save(name="every-second", workflow=Workflow.objects.get(slug="format-reply"),
              interval_seconds=1, inputs={}, by=operator)
"""
COUNT = """
from workflows.models import Run
runs = Run.objects.filter(ctx__schedule="every-second")
print(runs.count(), len(set(runs.values_list("idempotency_key", flat=True))),
      runs.filter(started_by__username="operator").count())
"""


@pytest.mark.django_db(transaction=False)
def test_embedded_up_starts_runs_of_a_schedule_made_while_it_runs(tmp_path):
    """`up`'s beat reads django-celery-beat's rows (the DatabaseScheduler), on SQLite."""
    env = _embedded_env(tmp_path)
    server, _ = _up(env, _free_port())

    def shell(code):
        command = [sys.executable, "manage.py", "shell", "-v", "0", "-c", code]
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.split()

    try:
        shell(CREATE)
        deadline = time.monotonic() + 60
        while int(shell(COUNT)[0]) < 2:
            assert time.monotonic() < deadline, "the embedded beat fired no schedule"
            assert server.poll() is None
            time.sleep(1)
        runs, keys, as_operator = map(int, shell(COUNT))
    finally:
        server.terminate()
        server.communicate(timeout=30)

    assert runs == keys == as_operator >= 2
