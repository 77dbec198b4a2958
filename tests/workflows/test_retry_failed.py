"""An operator retries a failed run (or a failed step of it) from the admin or the API: the failed
step gets a fresh attempt, the steps the failure stopped go on, and the run can complete."""

import threading

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.urls import reverse
from guardian.shortcuts import assign_perm

from accounts.models import AuditEntry
from config.errors import Conflict
from interventions.models import Intervention
from interventions.services import intervention_resolve
from tests.workflows.test_api import assert_error, client_for
from workflows.engine.api import run_cancel, run_retry, run_start
from workflows.models import Run, RunEvent, RunStatus, RunStep, StepRun

pytestmark = pytest.mark.django_db

FLAKY = """
slug: flaky-fetch
inputs: {url: {type: string, required: true}}
steps:
  - id: prepare
    tool: noop
  - id: fetch
    tool: http.get
    with: {url: "{{ inputs.url }}"}
  - id: report
    tool: noop
    with: {value: "{{ steps.fetch.output.status }}"}
"""


@pytest.fixture
def failed_run(make_workflow, operator, http_server, drain):
    """A run whose `fetch` failed (the server answered 500); the server now answers 200."""
    url, recorder = http_server
    recorder.status = 500
    run, _ = run_start(
        workflow=make_workflow(FLAKY), inputs={"url": f"{url}/thing"}, started_by=operator
    )
    drain()
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "HTTP 500" in run.error
    recorder.status = 200
    return run


@pytest.fixture
def staff(client, make_user):
    def sign_in(role: str):
        user = make_user(role)
        user.is_staff = True
        user.save(update_fields=["is_staff"])
        client.force_login(user)
        return user

    return sign_in


def attempts(run, step_id: str) -> list[tuple[int, str]]:
    rows = StepRun.objects.filter(run=run, step_id=step_id).order_by("attempt")
    return list(rows.values_list("attempt", "status"))


def statuses(run) -> dict:
    return dict(RunStep.objects.filter(run=run).values_list("step_id", "status"))


def snapshot(run) -> tuple:
    """What a refused retry must leave as it was."""
    run = Run.objects.get(pk=run.pk)
    events = list(RunEvent.objects.filter(run=run).values_list("seq", "type"))
    executions = list(StepRun.objects.filter(run=run).values_list("pk", "status"))
    audits = AuditEntry.objects.filter(action="run.retry").count()
    return run.status, run.error, run.finished_at, events, executions, audits


def test_a_failed_run_retried_from_the_admin_completes(client, staff, failed_run, drain):
    operator = staff("operator")
    page = client.get(reverse("admin:workflows_run_change", args=[failed_run.pk])).content.decode()
    assert ">Retry</button>" in page and "Retry step</button>" in page

    response = client.post(reverse("admin:workflows_run_retry", args=[failed_run.pk]), follow=True)

    assert "Retried: the run is running again" in response.content.decode()
    drain()
    failed_run.refresh_from_db()
    assert failed_run.status == RunStatus.COMPLETED
    assert (failed_run.error, failed_run.reserved_usd) == ("", 0)
    assert failed_run.finished_at is not None
    assert attempts(failed_run, "fetch") == [(1, "FAILED"), (2, "SUCCEEDED")]
    assert attempts(failed_run, "prepare") == [(1, "SUCCEEDED")]  # what succeeded is kept
    assert statuses(failed_run) == {"prepare": "SUCCEEDED", "fetch": "SUCCEEDED",
                                    "report": "SUCCEEDED"}  # fmt: skip
    assert failed_run.result["report"] == 200
    retried = RunEvent.objects.get(run=failed_run, type="run.retried").payload
    assert retried["by"] == operator.username and retried["steps"] == ["fetch"]
    assert "HTTP 500" in retried["error"]
    reopened = RunEvent.objects.filter(run=failed_run, type="run.status",
                                       payload__from="FAILED").get()  # fmt: skip
    assert reopened.payload == {"from": "FAILED", "to": "RUNNING", "reason": "retried",
                                "by": operator.username}  # fmt: skip
    entry = AuditEntry.objects.get(action="run.retry")
    assert (entry.actor, entry.object_id) == (operator, str(failed_run.pk))
    assert entry.before["status"] == "FAILED" and entry.after["steps"] == ["fetch"]
    page = client.get(reverse("admin:workflows_run_change", args=[failed_run.pk])).content.decode()
    assert ">Retry</button>" not in page and "Retry step</button>" not in page


def test_retry_step_from_its_row_gives_that_step_a_fresh_attempt(client, staff, failed_run, drain):
    staff("operator")
    url = reverse("admin:workflows_run_retry", args=[failed_run.pk])

    wrong = client.post(url, {"step": "prepare"}, follow=True).content.decode()
    assert "Step &#x27;prepare&#x27; of run" in wrong and "did not fail" in wrong
    client.post(url, {"step": "fetch"})

    drain()
    failed_run.refresh_from_db()
    assert failed_run.status == RunStatus.COMPLETED
    assert attempts(failed_run, "fetch") == [(1, "FAILED"), (2, "SUCCEEDED")]
    assert RunEvent.objects.get(run=failed_run, type="run.retried").payload["step"] == "fetch"


def test_a_second_retry_is_refused_and_changes_nothing(client, staff, failed_run):
    staff("operator")
    url = reverse("admin:workflows_run_retry", args=[failed_run.pk])
    client.post(url)
    before = snapshot(failed_run)

    again = client.post(url, follow=True).content.decode()

    assert "is RUNNING, not FAILED: only a failed run can be retried" in again
    assert snapshot(failed_run) == before
    assert attempts(failed_run, "fetch") == [(1, "FAILED"), (2, "PENDING")]


@pytest.mark.parametrize("status", ["RUNNING", "COMPLETED", "CANCELLED"])
def test_only_a_failed_run_is_retried(status, make_workflow, operator, http_server, drain):
    url, recorder = http_server
    workflow = make_workflow(FLAKY)
    run, _ = run_start(workflow=workflow, inputs={"url": f"{url}/ok"}, started_by=operator)
    if status == "COMPLETED":
        drain()
    if status == "CANCELLED":
        run_cancel(run_id=run.pk, by=operator)
    before = snapshot(run)
    assert before[0] == status

    with pytest.raises(Conflict) as refused:
        run_retry(run_id=run.pk, by=operator)

    assert refused.value.code == ("run_cancelled" if status == "CANCELLED" else "run_not_failed")
    if status == "CANCELLED":
        assert "a cancelled run is not retried" in refused.value.message
    assert snapshot(run) == before


def test_the_steps_the_failure_cancelled_go_on_too(make_workflow, operator, http_server, drain):
    url, recorder = http_server
    recorder.status = 503
    workflow = make_workflow(
        """
slug: two-branches
inputs: {url: {type: string}}
steps:
  - {id: start, tool: noop}
  - {id: fetch, needs: [start], tool: http.get, with: {url: "{{ inputs.url }}"}}
  - {id: ask, needs: [start], human: {type: approval, prompt: "Go?"}}
  - {id: done, needs: [fetch, ask], tool: noop}
"""
    )
    run, _ = run_start(workflow=workflow, inputs={"url": f"{url}/x"}, started_by=operator)
    drain()
    assert Run.objects.get(pk=run.pk).status == RunStatus.FAILED
    assert statuses(run)["ask"] == "CANCELLED"
    recorder.status = 200

    run_retry(run_id=run.pk, by=operator)
    drain()
    intervention = Intervention.objects.get(run_id=run.pk, status="OPEN")
    intervention_resolve(intervention_id=intervention.pk, user=operator, decision="approve")
    drain()

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert attempts(run, "ask") == [(1, "CANCELLED"), (2, "SUCCEEDED")]
    assert attempts(run, "fetch") == [(1, "FAILED"), (2, "SUCCEEDED")]
    assert RunEvent.objects.get(run=run, type="run.retried").payload["steps"] == ["fetch", "ask"]


def test_a_step_that_never_ran_starts_afresh_its_when_asked_again(
    client, staff, make_workflow, operator, drain
):
    workflow = make_workflow(
        "slug: badwhen\nsteps:\n  - id: a\n    tool: noop\n"
        "  - id: b\n    when: '1 / 0'\n    tool: noop\n"
    )
    run, _ = run_start(workflow=workflow, inputs={}, started_by=operator)
    drain()
    assert Run.objects.get(pk=run.pk).status == RunStatus.FAILED
    staff("operator")

    page = client.post(reverse("admin:workflows_run_retry", args=[run.pk]), follow=True)

    assert "Retried, and it failed again: step &#x27;b&#x27; when:" in page.content.decode()

    run.refresh_from_db()  # its `when` raised again: failed again, and said so once more
    assert run.status == RunStatus.FAILED and "when:" in run.error
    types = list(RunEvent.objects.filter(run=run).values_list("type", flat=True))
    assert types.count("run.retried") == 1 and RunStep.objects.filter(run=run).count() == 2


def test_a_retry_that_can_only_fail_the_same_way_is_refused(make_workflow, operator, drain):
    workflow = make_workflow(
        """
slug: never-holds
steps:
  - id: loop
    tool: noop
    repeat: {until: "false", max: 2}
"""
    )
    run, _ = run_start(workflow=workflow, inputs={}, started_by=operator)
    drain()
    before = snapshot(run)

    with pytest.raises(Conflict) as refused:
        run_retry(run_id=run.pk, by=operator)

    assert refused.value.code == "not_retryable"
    assert snapshot(run) == before


def retried_twice_at_once(run: Run, by) -> list[str]:
    """The outcomes of two retries of `run` let go at the same moment (two operators' clicks)."""
    barrier = threading.Barrier(2)
    outcomes = []

    def retry():
        barrier.wait()
        try:
            run_retry(run_id=run.pk, by=by)
            outcomes.append("retried")
        except Conflict as exc:
            outcomes.append(exc.code)
        finally:
            connection.close()

    threads = [threading.Thread(target=retry) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(outcomes)


@pytest.mark.django_db(transaction=True)
def test_two_retries_at_once_make_exactly_one_new_attempt(failed_run, operator):
    assert retried_twice_at_once(failed_run, operator) == ["retried", "run_not_failed"]
    assert attempts(failed_run, "fetch") == [(1, "FAILED"), (2, "PENDING")]
    assert RunEvent.objects.filter(run=failed_run, type="run.retried").count() == 1
    assert AuditEntry.objects.filter(action="run.retry").count() == 1


@pytest.mark.parametrize("role", ["viewer", "pilot"])
def test_viewers_and_pilots_cannot_retry_in_the_admin(role, client, staff, failed_run):
    user = staff(role)
    url = reverse("admin:workflows_run_retry", args=[failed_run.pk])
    assert client.post(url).status_code == 404  # they may not even see it

    assign_perm("view_workflow", user, failed_run.workflow)
    user.user_permissions.add(Permission.objects.get(codename="view_run"))
    page = client.get(reverse("admin:workflows_run_change", args=[failed_run.pk]))
    assert page.status_code == 200 and "Retry</button>" not in page.content.decode()
    assert client.post(url).status_code == 403
    assert Run.objects.get(pk=failed_run.pk).status == RunStatus.FAILED


def test_the_api_retries_a_failed_run_for_those_who_may_run_it(failed_run, make_user, drain):
    url = f"/api/runs/{failed_run.pk}/retry/"
    viewer = make_user("viewer")
    assert_error(client_for(viewer).post(url, {}, format="json"), 404, "not_found")
    assign_perm("view_workflow", viewer, failed_run.workflow)
    assert_error(client_for(viewer).post(url, {}, format="json"), 403)
    assert_error(client_for().post(url, {}, format="json"), 401)
    operator = client_for(make_user("operator"))
    assert_error(operator.post(url, {"step": "report"}, format="json"), 409, "step_not_failed")

    response = operator.post(url, {"step": "fetch"}, format="json")

    assert response.status_code == 200 and response.json()["status"] == "RUNNING"
    assert_error(operator.post(url, {}, format="json"), 409, "run_not_failed")
    drain()
    assert Run.objects.get(pk=failed_run.pk).status == RunStatus.COMPLETED
