"""The dashboard's intervention page: who sees it, the run's context, and the form of each type
answered through the API's services (the run moves on). The other acts, late answers and the
page's live parts are in test_dashboard_intervention_acts.py."""

import json
import re

import pytest
from django.test import Client
from guardian.shortcuts import assign_perm

from accounts.models import AuditEntry
from interventions.models import Intervention, Status
from tests.interventions.conftest import waiting_on
from tests.interventions.test_flows import APPROVAL, CORRECTED, ESCALATING, INPUT
from workflows.models import Run, RunEvent, RunStatus, StepRun

pytestmark = pytest.mark.django_db
FORMS = ('data-testid="answer-form"', 'data-testid="act-claim"', 'data-testid="delegate-form"',
         'data-testid="comment-form"')  # fmt: skip


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def url(intervention) -> str:
    return f"/dashboard/interventions/{intervention.pk}/"


def opened(start, drain, source=APPROVAL, **inputs):
    run = start(source, inputs)
    drain()
    return run, waiting_on(run)


def post(user, intervention, **body):
    return client_of(user).post(url(intervention), body)


def html_of(response) -> str:
    return response.content.decode()


def step_output(run, step_id):
    return StepRun.objects.filter(run=run, step_id=step_id).order_by("-attempt").first().output


def test_the_page_shows_the_intervention_and_its_run_s_context(start, drain, pilot):
    run, intervention = opened(start, drain, CORRECTED)

    html = html_of(client_of(pilot).get(url(intervention)))

    assert 'data-testid="intervention-prompt">Check the greeting<' in html
    assert 'data-testid="intervention-type">correction<' in html
    assert 'data-live="/ws/runs/' + str(run.pk) + '/"' in html
    assert 'data-testid="run-context"' in html and 'data-testid="run-cost">$0.00' in html
    assert 'data-testid="panel-guardian-decisions"' in html
    assert 'data-testid="panel-llm-calls"' in html
    # the proposed output, ready to edit, and the group the task is for
    assert "&quot;Dear sir&quot;" in html and "legal" in html


def test_the_page_shows_the_guardian_decision_and_its_evidence(
    make_workflow, operator, pilot, drain
):
    from guardians.services import guardian_create

    guardian_create(source={"slug": "score-gate", "kind": "CRITERIA_GATE",
                            "config": {"all": ["inputs.score < 0.7"], "else": "escalate"}},
                    by=operator)  # fmt: skip
    workflow = make_workflow("""
slug: gated
inputs: {score: {type: number}}
steps:
  - {id: risky, tool: noop, with: {value: done}, guard: [score-gate], escalation: {group: legal}}
""")
    assign_perm("view_workflow", pilot, workflow)
    from workflows.engine import api

    run = api.run_start(workflow=workflow, inputs={"score": 0.9}, started_by=operator)[0]
    drain()

    html = html_of(client_of(pilot).get(url(waiting_on(run))))

    assert 'data-testid="guardian-decision"' in html and "score-gate" in html
    assert "&quot;inputs.score&quot;: 0.9" in html  # the evidence: the value the rule read


def test_a_pilot_who_may_not_view_the_run_gets_404(start, drain, make_user):
    _, intervention = opened(start, drain)
    blind = make_user("pilot")
    blind.groups.add(intervention.group)

    assert client_of(blind).get(url(intervention)).status_code == 404
    assert post(blind, intervention, act="claim").status_code == 404
    assert client_of(blind).get(url(intervention) + "?part=body").status_code == 404
    intervention.refresh_from_db()
    assert intervention.status == Status.OPEN


def test_a_viewer_sees_the_page_read_only_and_cannot_act(start, drain, make_user):
    run, intervention = opened(start, drain)
    viewer = make_user("viewer")
    assign_perm("view_workflow", viewer, run.workflow)

    html = html_of(client_of(viewer).get(url(intervention)))
    refused = post(viewer, intervention, act="resolve", decision="approve")

    assert 'data-testid="readonly-notice"' in html
    assert not any(form in html for form in FORMS)
    assert refused.status_code == 403 and "You may not act" in html_of(refused)
    intervention.refresh_from_db()
    assert intervention.status == Status.OPEN


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_an_approval_is_answered_and_the_run_goes_on(start, drain, pilot, decision):
    run, intervention = opened(start, drain)
    client = client_of(pilot)

    response = client.post(url(intervention), {"act": "resolve", "decision": decision,
                                               "comment": "fine"})  # fmt: skip
    drain()

    assert response.status_code == 302 and response.url == url(intervention)
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert step_output(run, "ask")["decision"] == decision
    entry = AuditEntry.objects.get(action="intervention.resolve", object_id=str(intervention.pk))
    assert entry.actor == pilot and entry.after["decision"] == decision
    after = html_of(client.get(url(intervention)))
    assert 'data-testid="readonly-notice"' in after and "Answer recorded." in after
    assert f'data-testid="resolved-decision">{decision}<' in after
    assert 'data-testid="answer-form"' not in after


def test_an_input_form_renders_its_schema_as_fields(start, drain, pilot):
    _, intervention = opened(start, drain, INPUT)

    html = html_of(client_of(pilot).get(url(intervention)))

    name = re.search(r'<input id="field-data-name" name="data.name" value=""[^>]*>', html)
    assert name and 'aria-required="true"' in name.group(0)
    assert 'name="data.copies"' in html and 'inputmode="numeric"' in html
    assert 'data-testid="decide-submit"' in html


def test_an_input_failing_its_schema_shows_the_field_s_error_and_changes_nothing(
    start, drain, pilot
):
    run, intervention = opened(start, drain, INPUT)
    events = RunEvent.objects.filter(run=run).count()

    response = post(pilot, intervention, **{"act": "resolve", "decision": "submit",
                                            "data.name": "A", "data.copies": "two"})  # fmt: skip

    html = html_of(response)
    assert response.status_code == 400
    name_error = re.search(r'data-testid="field-error" data-field="data.name">([^<]+)<', html)
    copies_error = re.search(r'data-testid="field-error" data-field="data.copies">([^<]+)<', html)
    assert "too short" in name_error.group(1)
    assert "is not of type" in copies_error.group(1) and "integer" in copies_error.group(1)
    assert 'value="two"' in html  # what was typed, kept to fix
    assert 'data-testid="answer-invalid"' in html
    intervention.refresh_from_db()
    assert intervention.status == Status.OPEN and intervention.resolution is None
    assert RunEvent.objects.filter(run=run).count() == events
    assert not AuditEntry.objects.filter(action="intervention.resolve").exists()


def test_an_input_fitting_its_schema_becomes_the_step_s_data(start, drain, pilot):
    run, intervention = opened(start, drain, INPUT)

    response = post(pilot, intervention, **{"act": "resolve", "decision": "submit",
                                            "data.name": "Ada", "data.copies": "3"})  # fmt: skip
    drain()

    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert step_output(run, "details")["data"] == {"name": "Ada", "copies": 3}
    assert step_output(run, "after") == "Ada"


def test_a_required_field_left_empty_is_named(start, drain, pilot):
    _, intervention = opened(start, drain, INPUT)

    html = html_of(post(pilot, intervention, **{"act": "resolve", "data.name": ""}))

    assert re.search(r'data-field="data.name">&#x27;name&#x27; is a required property<', html)


def test_a_correction_is_edited_in_its_json_editor(start, drain, pilot):
    run, intervention = opened(start, drain, CORRECTED)

    post(pilot, intervention, act="resolve", decision="edit", output=json.dumps("Dear Ada"))
    drain()

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and step_output(run, "send") == "Dear Ada"


def test_a_correction_is_confirmed_as_proposed(start, drain, pilot):
    run, intervention = opened(start, drain, CORRECTED)

    post(pilot, intervention, act="resolve", decision="confirm", output=' "Dear sir"\n')
    drain()

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and step_output(run, "send") == "Dear sir"


@pytest.mark.parametrize("output", ['"Dear madam"', "not even json {"])
def test_confirming_a_correction_whose_output_was_edited_is_refused(start, drain, pilot, output):
    run, intervention = opened(start, drain, CORRECTED)

    response = post(pilot, intervention, act="resolve", decision="confirm", output=output)

    assert response.status_code == 400
    html = html_of(response)
    assert 'data-field="output">You edited the proposed output: submit the edit' in html
    assert "Dear madam" in html or "not even json {" in html  # the edit is kept, to submit
    assert Intervention.objects.get(pk=intervention.pk).status == Status.OPEN
    assert Run.objects.get(pk=run.pk).status == RunStatus.WAITING


def test_an_editor_holding_no_json_says_so_and_submits_nothing(start, drain, pilot):
    _, intervention = opened(start, drain, CORRECTED)

    response = post(pilot, intervention, act="resolve", decision="edit", output="{nope")

    assert response.status_code == 400
    assert re.search(r'data-field="output">Not valid JSON', html_of(response))
    intervention.refresh_from_db()
    assert intervention.status == Status.OPEN


@pytest.mark.parametrize(
    ("decision", "output", "status", "fetch"),
    [("override", "42", RunStatus.COMPLETED, "SUCCEEDED"),
     ("skip", "", RunStatus.COMPLETED, "SKIPPED"),
     ("abort", "", RunStatus.FAILED, "FAILED")],
)  # fmt: skip
def test_an_escalation_s_answers_move_the_run(start, drain, pilot, decision, output, status, fetch):
    run, intervention = opened(start, drain, ESCALATING)

    post(pilot, intervention, act="resolve", decision=decision, output=output)
    drain()

    run.refresh_from_db()
    assert run.status == status
    assert StepRun.objects.filter(run=run, step_id="fetch").latest("attempt").status == fetch
    if decision == "override":
        assert step_output(run, "after") == 42


def test_only_aborting_the_run_asks_for_confirmation_first(start, drain, pilot):
    _, intervention = opened(start, drain, ESCALATING)

    html = html_of(client_of(pilot).get(url(intervention)))

    abort = re.search(r'<button[^>]*data-testid="decide-abort"[^>]*>', html).group(0)
    assert 'data-confirm="Abort the run? It fails now' in abort
    assert html.count("data-confirm=") == 1 and "dashboard/confirm.js" in html


def test_an_escalation_retried_runs_the_step_again(start, drain, pilot):
    run, intervention = opened(start, drain, ESCALATING)

    post(pilot, intervention, act="resolve", decision="retry")
    drain()

    assert StepRun.objects.filter(run=run, step_id="fetch").latest("attempt").attempt == 2


def test_a_review_is_approved(start, drain, pilot):
    _, intervention = opened(start, drain, CORRECTED.replace("type: correction", "type: review"))

    html = html_of(client_of(pilot).get(url(intervention)))
    post(pilot, intervention, act="resolve", decision="approve")

    assert 'data-testid="decide-approve"' in html and 'data-testid="decide-reject"' in html
    intervention.refresh_from_db()
    assert intervention.status == Status.RESOLVED
