"""A retry of a failed run on a real worker, and what it does with steps that are more than one
attempt: a step held for a person, a foreach's items, a child run. The retry's entry points and
refusals are in test_retry_failed.py."""

import pytest

from config.errors import Conflict
from guardians.services import guardian_create
from interventions.models import Intervention
from interventions.services import intervention_resolve
from tests.conftest import wait_for_run
from tests.workflows.test_retry_failed import FLAKY, attempts, retried_twice_at_once
from workflows.engine.api import run_retry, run_start
from workflows.models import Run, RunStatus, StepRun

pytestmark = pytest.mark.django_db


@pytest.mark.django_db(transaction=True)
def test_a_retried_run_completes_on_a_real_worker_with_one_fresh_attempt(
    celery_worker, make_workflow, operator, http_server
):
    url, recorder = http_server
    recorder.status = 500
    workflow = make_workflow(FLAKY)
    run, _ = run_start(workflow=workflow, inputs={"url": f"{url}/thing"}, started_by=operator)
    assert wait_for_run(run).status == RunStatus.FAILED
    recorder.status = 200
    outcomes = retried_twice_at_once(run, operator)

    assert wait_for_run(run).status == RunStatus.COMPLETED
    assert outcomes == ["retried", "run_not_failed"]
    assert attempts(run, "fetch") == [(1, "FAILED"), (2, "SUCCEEDED")]
    assert recorder.count("/thing") == 2
    assert run.reserved_usd == 0


def test_a_step_held_for_a_person_is_asked_again_not_run_unapproved(
    make_workflow, operator, http_server, drain
):
    url, recorder = http_server
    recorder.status = 500
    guardian_create(
        source={"slug": "ask-first", "kind": "CRITERIA_GATE",
                "config": {"all": ["false"], "else": "escalate"}},
        by=operator,
    )  # fmt: skip
    workflow = make_workflow(
        """
slug: gated-branch
inputs: {url: {type: string}}
steps:
  - {id: start, tool: noop}
  - {id: fetch, needs: [start], tool: http.get, with: {url: "{{ inputs.url }}"}}
  - {id: held, needs: [start], tool: noop, guard: [ask-first]}
  - {id: done, needs: [fetch, held], tool: noop}
"""
    )
    run, _ = run_start(workflow=workflow, inputs={"url": f"{url}/x"}, started_by=operator)
    drain()
    assert Run.objects.get(pk=run.pk).status == RunStatus.FAILED
    assert attempts(run, "held") == [(0, "CANCELLED")]  # its hold, cancelled unanswered
    recorder.status = 200

    run_retry(run_id=run.pk, by=operator)
    drain()

    assert attempts(run, "held") == [(0, "CANCELLED"), (1, "WAITING")]  # held again
    assert Run.objects.get(pk=run.pk).status == RunStatus.WAITING
    escalation = Intervention.objects.get(run_id=run.pk, status="OPEN")
    intervention_resolve(intervention_id=escalation.pk, user=operator, decision="retry")
    drain()
    assert attempts(run, "held") == [(0, "CANCELLED"), (1, "CANCELLED"), (2, "SUCCEEDED")]
    assert Run.objects.get(pk=run.pk).status == RunStatus.COMPLETED


def test_a_foreach_retries_only_its_unfinished_items_and_goes_on(
    make_workflow, operator, http_server, drain
):
    url, recorder = http_server
    recorder.status = 500
    workflow = make_workflow(
        """
slug: fetch-each
inputs: {url: {type: string}}
steps:
  - id: each
    foreach: "['a', 'b', 'c']"
    concurrency: 2
    tool: http.get
    with: {url: "{{ inputs.url }}/{{ item }}"}
"""
    )
    run, _ = run_start(workflow=workflow, inputs={"url": url}, started_by=operator)
    drain()
    assert Run.objects.get(pk=run.pk).status == RunStatus.FAILED
    recorder.status = 200

    run_retry(run_id=run.pk, by=operator)
    drain()

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert [item["body"]["path"] for item in run.result["each"]] == ["/a", "/b", "/c"]
    rows = StepRun.objects.filter(run=run).order_by("iteration", "attempt")
    by_item = {}
    for iteration, attempt, status in rows.values_list("iteration", "attempt", "status"):
        by_item.setdefault(iteration, []).append((attempt, status))
    first_two = sorted(status for iteration in (0, 1) for _, status in by_item[iteration][:1])
    assert first_two == ["CANCELLED", "FAILED"]  # one failed, the failure cancelled the other
    assert [by_item[i][1:] for i in (0, 1)] == [[(2, "SUCCEEDED")], [(2, "SUCCEEDED")]]
    assert by_item[2] == [(1, "SUCCEEDED")]  # not started before: its first attempt


def test_a_failed_child_run_is_retried_through_its_parent_which_starts_a_new_child(
    make_workflow, operator, http_server, drain
):
    url, recorder = http_server
    recorder.status = 500
    make_workflow(FLAKY)
    parent = make_workflow(
        f"""
slug: calls-flaky
steps:
  - id: call
    workflow: flaky-fetch
    with: {{url: "{url}/thing"}}
"""
    )
    run, _ = run_start(workflow=parent, inputs={}, started_by=operator)
    drain()
    first_child = Run.objects.get(parent_run=run)
    assert Run.objects.get(pk=run.pk).status == first_child.status == RunStatus.FAILED
    recorder.status = 200

    with pytest.raises(Conflict) as refused:
        run_retry(run_id=first_child.pk, by=operator)
    assert refused.value.code == "child_run"
    run_retry(run_id=run.pk, by=operator)
    drain()

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    children = Run.objects.filter(parent_run=run).order_by("created_at")
    assert [child.status for child in children] == ["FAILED", "COMPLETED"]
    assert attempts(run, "call") == [(1, "FAILED"), (2, "SUCCEEDED")]
