"""The dashboard's intervention page beyond the answer form: claim, release, delegate and
comment, late and empty acts, and the page's live parts."""

import re

import pytest
from guardian.shortcuts import assign_perm

from accounts.models import AuditEntry
from interventions.models import Intervention, InterventionComment, Status
from interventions.services import intervention_resolve
from tests.interventions.test_dashboard_intervention import client_of, html_of, opened, post, url
from tests.interventions.test_flows import CORRECTED, TWO_APPROVERS
from workflows.models import Run, RunEvent, RunStatus

pytestmark = pytest.mark.django_db


def test_a_stale_answer_shows_a_notice_with_who_answered_first(start, drain, pilot, make_user):
    _, intervention = opened(start, drain)
    first = make_user("operator")
    intervention_resolve(intervention_id=intervention.pk, user=first, decision="reject")

    response = post(pilot, intervention, act="resolve", decision="approve")

    html = html_of(response)
    assert response.status_code == 409
    assert 'data-testid="stale-notice"' in html and "already RESOLVED" in html
    assert 'data-testid="readonly-notice"' in html
    assert f'data-testid="resolved-by">{first.username}<' in html
    assert 'data-testid="resolved-decision">reject<' in html
    intervention.refresh_from_db()
    assert intervention.resolved_by == first and intervention.resolution["decision"] == "reject"


def test_the_page_s_part_reloads_on_its_intervention_s_events(start, drain, pilot, make_user):
    _, intervention = opened(start, drain)
    client = client_of(pilot)
    page = html_of(client.get(url(intervention)))
    intervention_resolve(intervention_id=intervention.pk, user=make_user("operator"),
                         decision="approve")  # fmt: skip

    part = html_of(client.get(url(intervention) + "?part=body"))

    assert f'hx-get="{url(intervention)}?part=body"' in page
    assert f"live[detail.resync || detail.interventions['{intervention.pk}']]" in page
    assert "<html" not in part and 'data-testid="readonly-notice"' in part
    assert 'data-testid="answer-form"' not in part


def test_claim_release_delegate_and_comment_work_and_are_audited(
    start, drain, pilot, make_user, legal
):
    run, intervention = opened(start, drain)
    colleague = make_user("pilot", username="grace")
    colleague.groups.add(legal)
    assign_perm("view_workflow", colleague, run.workflow)

    def audited(act):
        entries = AuditEntry.objects.filter(action=f"intervention.{act}", actor=pilot)
        return entries.filter(object_id=str(intervention.pk)).count()

    post(pilot, intervention, act="claim")
    intervention.refresh_from_db()
    assert (intervention.status, intervention.claimed_by) == (Status.CLAIMED, pilot)
    assert 'data-testid="act-release"' in html_of(client_of(pilot).get(url(intervention)))
    held = html_of(client_of(colleague).get(url(intervention)))
    assert 'data-testid="claimed-notice"' in held and 'data-testid="answer-form"' not in held

    post(pilot, intervention, act="release")
    intervention.refresh_from_db()
    assert intervention.status == Status.OPEN and intervention.claimed_by is None

    assert '<option value="grace">' in html_of(client_of(pilot).get(url(intervention)))
    post(pilot, intervention, act="delegate", to="grace")
    intervention.refresh_from_db()
    assert intervention.assignee == colleague

    post(pilot, intervention, act="comment", text="over to you")
    assert InterventionComment.objects.get(intervention=intervention).text == "over to you"
    assert "over to you" in html_of(client_of(colleague).get(url(intervention)))

    assert [audited(act) for act in ("claim", "release", "delegate")] == [1, 1, 1]
    types = set(RunEvent.objects.filter(run=run).values_list("type", flat=True))
    assert {"intervention.claimed", "intervention.released", "intervention.delegated"} <= types


def test_delegating_to_someone_who_may_not_see_it_shows_the_error_by_the_field(
    start, drain, pilot, make_user
):
    _, intervention = opened(start, drain)
    make_user("pilot", username="stranger")

    response = post(pilot, intervention, act="delegate", to="stranger")

    assert response.status_code == 400
    assert re.search(r'id="delegate-to-error" data-testid="field-error">No user', html_of(response))
    intervention.refresh_from_db()
    assert intervention.assignee is None


def test_claiming_what_another_pilot_holds_is_a_notice_not_an_error_page(
    start, drain, pilot, make_user, legal
):
    run, intervention = opened(start, drain)
    other = make_user("pilot")
    other.groups.add(legal)
    assign_perm("view_workflow", other, run.workflow)
    post(other, intervention, act="claim")

    response = post(pilot, intervention, act="claim")

    assert response.status_code == 409
    assert 'data-testid="stale-notice"' in html_of(response) and other.username in html_of(response)


def test_the_run_stays_as_it_was_when_nothing_was_answered(start, drain, pilot):
    run, intervention = opened(start, drain)

    post(pilot, intervention, act="resolve")  # an approval takes a decision

    assert Run.objects.get(pk=run.pk).status == RunStatus.WAITING
    assert Intervention.objects.get(pk=intervention.pk).status == Status.OPEN


def test_one_approval_of_two_is_recorded_and_the_approver_is_not_asked_again(
    start, drain, pilot, make_user, legal
):
    run, intervention = opened(start, drain, TWO_APPROVERS)
    second = make_user("pilot")
    second.groups.add(legal)
    assign_perm("view_workflow", second, run.workflow)

    post(pilot, intervention, act="resolve", decision="approve")
    mine = html_of(client_of(pilot).get(url(intervention)))
    theirs = html_of(client_of(second).get(url(intervention)))
    post(second, intervention, act="resolve", decision="approve")
    drain()

    assert 'data-testid="approved-notice"' in mine and 'data-testid="answer-form"' not in mine
    assert 'data-testid="answer-form"' in theirs and "1 of 2" in theirs
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED


def test_an_empty_comment_is_refused_by_its_field(start, drain, pilot):
    _, intervention = opened(start, drain)

    response = post(pilot, intervention, act="comment", text="  ")

    assert response.status_code == 400
    assert 'id="comment-text-error" data-testid="field-error">Write it first.' in html_of(response)
    assert not InterventionComment.objects.exists()


def test_the_run_s_side_reloads_on_the_run_s_events(start, drain, pilot):
    run, intervention = opened(start, drain, CORRECTED)
    client = client_of(pilot)

    page = html_of(client.get(url(intervention)))
    part = html_of(client.get(url(intervention) + "?part=run"))

    assert f'hx-get="{url(intervention)}?part=run"' in page
    assert "<html" not in part and 'data-testid="run-context"' in part
    assert f'href="/dashboard/runs/{run.pk}/"' in part


def test_a_comment_past_the_api_s_limit_is_refused_by_its_field(start, drain, pilot):
    _, intervention = opened(start, drain)

    response = post(pilot, intervention, act="comment", text="x" * 200_000)

    assert response.status_code == 400
    html = html_of(response)
    assert re.search(r'id="comment-text-error" data-testid="field-error">[^<]*10000', html)
    assert not InterventionComment.objects.exists()


def test_an_answer_s_comment_past_the_api_s_limit_is_refused_by_its_field(start, drain, pilot):
    run, intervention = opened(start, drain)

    response = post(pilot, intervention, act="resolve", decision="approve", comment="x" * 10_001)

    assert response.status_code == 400
    html = html_of(response)
    error = r'id="answer-comment-error" data-testid="field-error" data-field="comment">[^<]*10000'
    assert re.search(error, html)
    assert 'data-testid="answer-invalid"' in html
    assert Intervention.objects.get(pk=intervention.pk).status == Status.OPEN
    assert Run.objects.get(pk=run.pk).status == RunStatus.WAITING


def test_a_delegate_name_past_the_api_s_limit_is_refused_by_its_field(start, drain, pilot):
    _, intervention = opened(start, drain)

    response = post(pilot, intervention, act="delegate", to="x" * 151)

    assert response.status_code == 400
    error = r'id="delegate-to-error" data-testid="field-error">[^<]*150'
    assert re.search(error, html_of(response))
