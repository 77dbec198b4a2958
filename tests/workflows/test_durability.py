"""Durability and concurrency against real PostgreSQL, Redis and `celery worker` processes."""

import time
from contextlib import contextmanager

import pytest
from celery import current_app

from tests.conftest import WorkerProcess, wait_for, wait_for_run
from workflows.engine.dispatch import EXECUTE_STEP_TASK
from workflows.engine.runs import run_cancel, run_start
from workflows.engine.sweeps import steps_resend_after_broker_loss
from workflows.models import RunStatus, RunStep, StepRun, StepStatus

pytestmark = pytest.mark.django_db(transaction=True)


def step_run_of(run, step_id):
    return StepRun.objects.filter(run=run, step_id=step_id).order_by("-attempt").first()


def test_a_worker_killed_mid_step_is_recovered_after_its_lease_and_commits_once(
    make_workflow, operator, http_server, tmp_path
):
    base_url, recorder = http_server
    recorder.delay_s = 30
    workflow = make_workflow(
        f"""
slug: killed
steps:
  - id: call
    tool: http.get
    with: {{url: "{base_url}/slow"}}
    timeout_s: 4
  - id: after
    tool: noop
    with: {{value: "{{{{ steps.call.output.status }}}}"}}
"""
    )
    victim = WorkerProcess("victim", concurrency=1)
    try:
        run, _ = run_start(workflow=workflow, inputs={}, started_by=operator)
        wait_for(lambda: recorder.count("/slow") == 1, what="the victim to call the server")
    finally:
        victim.kill()
    recorder.delay_s = 0
    rescuer = WorkerProcess("rescuer", concurrency=1, beat=True, tmp_path=tmp_path)
    try:
        run = wait_for_run(run, timeout=60)
    finally:
        rescuer.stop()

    assert run.status == RunStatus.COMPLETED
    assert run.result["after"] == 200
    call = StepRun.objects.get(run=run, step_id="call")  # one execution row, never two
    assert call.status == StepStatus.SUCCEEDED
    events = list(run.events.filter(payload__step="call").values_list("type", "payload"))
    started = [payload for kind, payload in events if kind == "step.started"]
    assert len(started) == 2
    assert started[1]["took_over_from"].startswith("victim@")
    assert [kind for kind, _ in events].count("step.succeeded") == 1
    assert recorder.count("/slow") == 2  # outside effects are at least once, results once


def test_a_step_delivered_twice_runs_its_effect_once(
    celery_worker, make_workflow, operator, http_server
):
    base_url, recorder = http_server
    recorder.delay_s = 1.5
    workflow = make_workflow(
        f"""
slug: twice
steps:
  - id: notify
    tool: http.post
    with: {{url: "{base_url}/effect", json: {{hello: world}}}}
"""
    )
    run, _ = run_start(workflow=workflow, inputs={}, started_by=operator)
    wait_for(lambda: recorder.count("/effect") == 1, what="the first delivery")
    notify = step_run_of(run, "notify")

    current_app.send_task(EXECUTE_STEP_TASK, args=[str(run.pk), notify.pk])
    run = wait_for_run(run)
    current_app.send_task(EXECUTE_STEP_TASK, args=[str(run.pk), notify.pk])
    time.sleep(1)

    assert run.status == RunStatus.COMPLETED
    assert recorder.count("/effect") == 1
    [request] = recorder.requests
    assert request["headers"]["Idempotency-Key"] == f"{run.pk}:notify:0"
    assert run.events.filter(type="step.succeeded").count() == 1


DIAMOND = """
slug: diamond
steps:
  - id: start
    tool: noop
  - id: left
    needs: [start]
    tool: {branch_tool}
  - id: right
    needs: [start]
    tool: {branch_tool}
  - id: join
    needs: [left, right]
    tool: noop
"""


def test_parallel_branches_on_two_worker_processes_start_their_join_once(
    celery_worker, make_workflow, operator
):
    workflow = make_workflow(DIAMOND.format(branch_tool="noop"))

    runs = [run_start(workflow=workflow, inputs={}, started_by=operator)[0] for _ in range(15)]

    for run in runs:
        assert wait_for_run(run).status == RunStatus.COMPLETED
        assert StepRun.objects.filter(run=run, step_id="join").count() == 1
        assert RunStep.objects.filter(run=run, step_id="join").count() == 1


def test_a_failed_attempt_is_retried_by_the_beat_sweep_after_its_backoff(
    celery_worker, make_workflow, operator, http_server
):
    base_url, recorder = http_server
    recorder.status = 503
    workflow = make_workflow(
        f"""
slug: retried
steps:
  - id: call
    tool: http.get
    with: {{url: "{base_url}/flaky"}}
    retry: {{max_attempts: 3, backoff_s: 1, max_backoff_s: 1}}
"""
    )
    run, _ = run_start(workflow=workflow, inputs={}, started_by=operator)
    wait_for(lambda: recorder.count("/flaky") == 1, what="the first attempt")
    recorder.status = 200

    run = wait_for_run(run)

    assert run.status == RunStatus.COMPLETED
    attempts = list(
        StepRun.objects.filter(run=run).order_by("attempt").values_list("attempt", "status")
    )
    assert attempts == [(1, "FAILED"), (2, "SUCCEEDED")]


def test_sleep_wakes_on_the_beat_sweep_without_holding_a_worker(
    celery_worker, make_workflow, operator
):
    workflow = make_workflow(
        "slug: napper\nsteps:\n  - id: nap\n    tool: sleep\n    with: {seconds: 1}\n"
        "  - id: after\n    tool: noop\n    with: {value: awake}\n"
    )
    run, _ = run_start(workflow=workflow, inputs={}, started_by=operator)
    wait_for_run(run, statuses={RunStatus.WAITING})

    run = wait_for_run(run)

    assert run.status == RunStatus.COMPLETED
    assert run.result["after"] == "awake"


def test_cancelling_a_run_stops_its_steps_and_discards_a_running_step_s_late_result(
    celery_worker, make_workflow, operator, http_server
):
    base_url, recorder = http_server
    recorder.delay_s = 2
    workflow = make_workflow(
        f"slug: stuck\nsteps:\n  - id: call\n    tool: http.get\n"
        f"    with: {{url: '{base_url}/stuck'}}\n    timeout_s: 60\n"
        "  - id: after\n    tool: noop\n"
    )
    run, _ = run_start(workflow=workflow, inputs={}, started_by=operator)
    wait_for(lambda: recorder.count("/stuck") == 1, what="the step to start")

    run_cancel(run_id=run.pk)
    inspector = current_app.control.inspect(timeout=1)
    wait_for(
        lambda: not any((inspector.active() or {}).values()),
        timeout=15,
        what="the running step to end",
    )

    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert step_run_of(run, "call").status == StepStatus.CANCELLED
    assert not StepRun.objects.filter(run=run, step_id="after").exists()
    assert not run.events.filter(type="step.succeeded").exists()


def test_the_steps_a_run_starts_at_once_go_to_the_broker_through_one_producer(
    celery_worker, make_workflow, operator, monkeypatch
):
    roots = "".join(f"  - id: s{n}\n    needs: []\n    tool: noop\n" for n in range(20))
    workflow = make_workflow(f"slug: wide\nsteps:\n{roots}")
    acquired = []
    acquire = current_app.producer_or_acquire

    def counted(producer=None):
        if producer is None:  # send_task passes the one it was given back in
            acquired.append("from the pool")
        return acquire(producer)

    monkeypatch.setattr(current_app, "producer_or_acquire", counted)

    run, _ = run_start(workflow=workflow, inputs={}, started_by=operator)
    run = wait_for_run(run)

    assert acquired == ["from the pool"]  # once, for the 20 messages
    assert run.status == RunStatus.COMPLETED
    assert run.progress_done == 20


def test_two_worker_processes_keep_many_outside_calls_in_flight_without_a_connection_each(
    celery_worker, make_workflow, operator, http_server, pgbouncer
):
    base_url, recorder = http_server
    recorder.delay_s = 2
    workflow = make_workflow(
        f"slug: calls\nsteps:\n  - id: call\n    tool: http.get\n"
        f"    with: {{url: '{base_url}/call'}}\n"
    )
    runs = [run_start(workflow=workflow, inputs={}, started_by=operator)[0] for _ in range(24)]
    peak_clients = 0
    while recorder.count("/call") < len(runs) or recorder.in_flight:
        clients = [c for c in pgbouncer.show("CLIENTS") if c["database"] == pgbouncer.dbname]
        peak_clients = max(peak_clients, len(clients))
        time.sleep(0.05)

    assert all(wait_for_run(run).status == RunStatus.COMPLETED for run in runs)
    assert recorder.peak_in_flight >= 12  # two processes, not two calls at a time
    assert peak_clients < recorder.peak_in_flight  # waiting calls hold no database connection


def test_a_leased_call_that_outlives_its_timeout_fails_as_timed_out(
    celery_worker, make_workflow, operator, http_server
):
    base_url, recorder = http_server
    recorder.delay_s = 5
    workflow = make_workflow(
        f"slug: slow-call\nsteps:\n  - id: call\n    tool: http.get\n"
        f"    with: {{url: '{base_url}/slow'}}\n    timeout_s: 1\n"
    )
    run, _ = run_start(workflow=workflow, inputs={}, started_by=operator)

    run = wait_for_run(run)

    assert run.status == RunStatus.FAILED
    call = StepRun.objects.get(run=run)
    assert (call.status, call.error_code) == (StepStatus.FAILED, "timeout")
    assert "timed out after 1s" in call.error


@contextmanager
def database_cut_for_workers(pgbouncer):
    """The workers' way to PostgreSQL (PgBouncer) goes away for the block: their connections
    dropped, new ones refused. This test process reaches PostgreSQL directly."""
    pgbouncer.admin(f"DISABLE {pgbouncer.dbname}")
    pgbouncer.admin(f"KILL {pgbouncer.dbname}")
    try:
        yield
    finally:
        pgbouncer.admin(f"ENABLE {pgbouncer.dbname}")
        pgbouncer.admin(f"RESUME {pgbouncer.dbname}")


def test_a_delivery_that_finds_the_database_gone_tries_again_within_seconds(
    celery_worker, make_workflow, operator, pgbouncer
):
    workflow = make_workflow("slug: through-an-outage\nsteps:\n  - id: a\n    tool: noop\n")
    # The broker has its mark (a worker started moments ago may not have swept yet): else the
    # first sweep after the outage would resend every pending step run, as after a broker loss.
    steps_resend_after_broker_loss()
    with database_cut_for_workers(pgbouncer):
        run, _ = run_start(workflow=workflow, inputs={}, started_by=operator)
        time.sleep(2)  # the delivery meets the outage, and retries
        first_sent = StepRun.objects.get(run=run).dispatched_at

    run = wait_for_run(run)

    assert run.status == RunStatus.COMPLETED
    # Done by the delivery's own retry, not a resend by the sweep (which stamps dispatched_at).
    assert StepRun.objects.get(run=run).dispatched_at == first_sent


def test_a_call_whose_outcome_meets_the_database_gone_is_recorded_when_it_is_back(
    celery_worker, make_workflow, operator, http_server, pgbouncer
):
    base_url, recorder = http_server
    recorder.delay_s = 1.5
    workflow = make_workflow(
        f"slug: record-later\nsteps:\n  - id: call\n    tool: http.get\n"
        f"    with: {{url: '{base_url}/work'}}\n    timeout_s: 5\n"
    )
    run, _ = run_start(workflow=workflow, inputs={}, started_by=operator)
    wait_for(lambda: recorder.count("/work") == 1, what="the call to start")
    with database_cut_for_workers(pgbouncer):
        time.sleep(3)  # the call ends meanwhile; its outcome cannot be written

    run = wait_for_run(run)

    assert run.status == RunStatus.COMPLETED
    assert recorder.count("/work") == 1  # recorded, not done again after its lease
