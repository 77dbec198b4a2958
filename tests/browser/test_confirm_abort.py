"""Aborting a run from an escalation asks first, in the browser's own dialog: cancelling it
sends nothing, confirming it aborts the run."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import signed_in
from tests.browser.test_pilot_flow import opened
from tests.conftest import wait_for
from tests.interventions.test_flows import ESCALATING
from workflows.engine import api
from workflows.models import Run, RunStatus

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _worker(celery_worker):
    """The worker runs the step that fails and escalates."""


def test_aborting_the_run_asks_first_and_cancelling_sends_nothing(
    new_page, make_pilot, make_workflow, operator
):
    workflow = make_workflow(ESCALATING)
    run = api.run_start(workflow=workflow, inputs={}, started_by=operator)[0]
    intervention = opened(run)
    page = signed_in(new_page, make_pilot(workflow))
    page.goto(f"/dashboard/interventions/{intervention.pk}/")
    asked: list[str] = []

    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.get_by_test_id("decide-abort").click()
    expect(page.get_by_test_id("answer-form")).to_be_visible()
    intervention.refresh_from_db()

    assert asked == ["Abort the run? It fails now and none of its remaining steps will run."]
    assert intervention.status == "OPEN"

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("decide-abort").focus()
    page.keyboard.press("Enter")

    expect(page.get_by_test_id("resolved-by")).to_be_visible()
    expect(page.get_by_test_id("answer-form")).to_have_count(0)
    failed = Run.objects.filter(pk=run.pk, status=RunStatus.FAILED)
    wait_for(failed.exists, what="the aborted run failing")
