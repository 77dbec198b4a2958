"""What a pilot types on an intervention's page is not wiped by the page's live reloads: while
the form holds input, a change that can still be answered shows a notice to reload instead; one
that can no longer be answered is shown, with what they had typed. A correction's "Confirm as
proposed" is off while its output editor holds an edit."""

import pytest
from playwright.sync_api import expect

from interventions.services import intervention_resolve
from tests.browser.conftest import mark, not_reloaded, signed_in
from tests.browser.test_pilot_flow import opened
from tests.interventions.test_flows import CORRECTED, TWO_APPROVERS
from workflows.engine import api

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _worker(celery_worker):
    """The run is executed, not left queued for another test's worker."""


@pytest.fixture
def typing(new_page, make_pilot, make_workflow, operator):
    """(page, intervention, other approver): a pilot on a two-approver intervention's page,
    half-way through writing the answer's comment."""
    workflow = make_workflow(TWO_APPROVERS)
    run = api.run_start(workflow=workflow, inputs={}, started_by=operator)[0]
    intervention = opened(run)
    page = signed_in(new_page, make_pilot(workflow))
    page.goto(f"/dashboard/interventions/{intervention.pk}/")
    expect(page.locator("#live-status")).to_have_text("Live")
    page.get_by_test_id("answer-comment").fill("Checked the invoice, but")
    mark(page)
    return page, intervention, make_pilot(workflow)


def test_another_approval_while_typing_offers_a_reload_and_keeps_the_text(typing):
    page, intervention, other = typing

    intervention_resolve(intervention_id=intervention.pk, user=other, decision="approve")

    notice = page.get_by_test_id("changed-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("This intervention changed: reload")
    expect(page.get_by_test_id("answer-comment")).to_have_value("Checked the invoice, but")
    expect(page.get_by_test_id("intervention-body")).not_to_contain_text("1 of 2")
    assert not_reloaded(page)

    page.get_by_test_id("changed-reload").click()
    expect(page.get_by_test_id("intervention-body")).to_contain_text("1 of 2")


def test_an_answer_by_someone_else_while_typing_is_shown_with_what_was_typed(typing):
    page, intervention, other = typing

    intervention_resolve(intervention_id=intervention.pk, user=other, decision="reject")

    expect(page.get_by_test_id("readonly-notice")).to_be_visible()
    expect(page.get_by_test_id("answer-form")).to_have_count(0)
    notice = page.get_by_test_id("changed-notice")
    expect(notice).to_contain_text("can no longer be answered")
    expect(page.get_by_test_id("changed-kept")).to_have_text("Checked the invoice, but")


def test_confirm_as_proposed_is_off_while_the_output_holds_an_edit(
    new_page, make_pilot, make_workflow, operator
):
    workflow = make_workflow(CORRECTED)
    run = api.run_start(workflow=workflow, inputs={}, started_by=operator)[0]
    intervention = opened(run)
    page = signed_in(new_page, make_pilot(workflow))
    page.goto(f"/dashboard/interventions/{intervention.pk}/")
    confirm, editor = page.get_by_test_id("decide-confirm"), page.get_by_test_id("answer-output")
    expect(confirm).to_be_enabled()

    editor.fill('"Dear madam"')
    expect(confirm).to_be_disabled()
    expect(page.get_by_test_id("confirm-hint")).to_be_visible()

    editor.fill('"Dear sir"')
    expect(confirm).to_be_enabled()
    expect(page.get_by_test_id("confirm-hint")).to_be_hidden()
