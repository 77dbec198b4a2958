"""The interventions API: the queue, who may see and act, and the errors of each act."""

import pytest
from guardian.shortcuts import assign_perm

from interventions.models import Intervention
from tests.interventions.conftest import waiting_on
from tests.interventions.test_flows import APPROVAL, INPUT
from tests.workflows.test_api import client_for
from workflows.models import RunStatus

pytestmark = pytest.mark.django_db


def _open(start, drain, source=APPROVAL):
    run = start(source)
    drain()
    return run, waiting_on(run)


def _post(user, intervention, act, body=None):
    return client_for(user).post(f"/api/interventions/{intervention.pk}/{act}/", body or {},
                                 format="json")  # fmt: skip


def test_a_pilot_who_may_not_view_the_run_gets_404_and_never_sees_it(start, drain, make_user):
    _, intervention = _open(start, drain)
    stranger = make_user("pilot")
    stranger.groups.add(intervention.group)  # in the group, but not allowed to view the workflow

    client = client_for(stranger)
    assert client.get("/api/interventions/").json()["results"] == []
    assert client.get(f"/api/interventions/{intervention.pk}/").status_code == 404
    for act in ("claim", "release", "resolve", "delegate", "comment"):
        assert _post(stranger, intervention, act, {"decision": "approve"}).status_code == 404


def test_a_pilot_outside_the_candidate_group_may_look_but_not_claim_or_resolve(
    start, drain, make_user
):
    run, intervention = _open(start, drain)
    outsider = make_user("pilot")
    assign_perm("view_workflow", outsider, run.workflow)

    assert client_for(outsider).get(f"/api/interventions/{intervention.pk}/").status_code == 200
    for act in ("claim", "resolve", "release", "delegate"):
        response = _post(outsider, intervention, act, {"decision": "approve", "to": "x"})
        assert response.status_code == 403, act
        assert response.json()["error"]["code"] == "permission_denied"


def test_the_group_s_pilot_claims_and_resolves_and_the_run_goes_on(start, drain, pilot):
    run, intervention = _open(start, drain)

    claimed = _post(pilot, intervention, "claim")
    resolved = _post(pilot, intervention, "resolve", {"decision": "approve", "comment": "ok"})
    drain()

    assert claimed.status_code == 200 and claimed.json()["status"] == "CLAIMED"
    body = resolved.json()
    assert resolved.status_code == 200 and body["status"] == "RESOLVED"
    assert body["resolved_by"] == pilot.username
    assert body["resolution"] == {"decision": "approve", "data": None, "output": None,
                                  "comment": "ok"}  # fmt: skip
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED


def test_an_operator_may_act_on_any_intervention_they_can_see(start, drain, make_user):
    _, intervention = _open(start, drain)

    response = _post(make_user("operator"), intervention, "resolve", {"decision": "reject"})

    assert response.status_code == 200 and response.json()["status"] == "RESOLVED"


def test_the_assignee_may_act_without_being_in_a_group(start, drain, make_user, make_workflow):
    assignee = make_user("pilot", username="ada")
    source = APPROVAL.replace("group: legal", "assignee: ada")
    run, intervention = _open(start, drain, source)
    assign_perm("view_workflow", assignee, run.workflow)

    assert intervention.assignee == assignee and intervention.group is None
    assert _post(assignee, intervention, "resolve", {"decision": "approve"}).status_code == 200


def test_a_claimed_intervention_is_the_claimer_s_until_released(start, drain, pilot, make_user):
    run, intervention = _open(start, drain)
    colleague = make_user("pilot")
    colleague.groups.add(intervention.group)
    assign_perm("view_workflow", colleague, run.workflow)
    _post(pilot, intervention, "claim")

    taken = _post(colleague, intervention, "resolve", {"decision": "approve"})
    also = _post(colleague, intervention, "claim")
    released = _post(pilot, intervention, "release")
    now_theirs = _post(colleague, intervention, "claim")

    assert (taken.status_code, taken.json()["error"]["code"]) == (409, "claimed")
    assert also.status_code == 409 and released.json()["status"] == "OPEN"
    assert now_theirs.json()["claimed_by"] == colleague.username


def test_bad_answers_are_400_naming_the_field_and_change_nothing(start, drain, pilot):
    _, approval = _open(start, drain)
    _, form = _open(start, drain, INPUT.replace("ask-for-input", "ask-again"))

    wrong = _post(pilot, approval, "resolve", {"decision": "maybe"})
    unfit = _post(pilot, form, "resolve", {"data": {"name": "A"}})

    assert wrong.status_code == 400 and list(wrong.json()["error"]["details"]) == ["decision"]
    assert unfit.status_code == 400 and list(unfit.json()["error"]["details"]) == ["data.name"]
    assert Intervention.objects.filter(status="OPEN").count() == 2


def test_a_late_answer_gets_409_with_the_reason(start, drain, pilot):
    _, intervention = _open(start, drain)
    _post(pilot, intervention, "resolve", {"decision": "approve"})

    late = _post(pilot, intervention, "resolve", {"decision": "reject"})

    assert late.status_code == 409
    assert late.json()["error"]["code"] == "intervention_resolved"
    assert pilot.username in late.json()["error"]["message"]


def test_the_queue_is_urgent_first_then_due_first_and_filters(
    start, drain, pilot, django_assert_max_num_queries
):
    low = APPROVAL.replace("priority: high", "priority: low").replace("approve-or-not", "low")
    urgent = APPROVAL.replace("priority: high", "priority: urgent").replace("approve-or-not", "u")
    soon = APPROVAL.replace("due_in: 4h", "due_in: 15m").replace("approve-or-not", "soon")
    for source in (low, APPROVAL, urgent, soon, INPUT):
        start(source)
    drain()

    client = client_for(pilot)
    with django_assert_max_num_queries(6):  # no query per row
        queue = client.get("/api/interventions/").json()["results"]
    inputs = client_for(pilot).get("/api/interventions/?type=input").json()["results"]
    mine = client_for(pilot).get("/api/interventions/?assignee=me").json()["results"]
    legal = client_for(pilot).get("/api/interventions/?group=legal&page_size=2").json()

    assert [item["workflow"] for item in queue] == ["u", "soon", "approve-or-not",
                                                    "ask-for-input", "low"]  # fmt: skip
    assert [item["type"] for item in inputs] == ["input"] and mine == []
    paged = legal["results"]
    while legal["next"]:
        legal = client_for(pilot).get(legal["next"]).json()
        assert len(legal["results"]) <= 2
        paged += legal["results"]
    assert [item["workflow"] for item in paged] == [item["workflow"] for item in queue]


def test_delegating_hands_it_to_someone_who_can_see_it(start, drain, pilot, make_user):
    run, intervention = _open(start, drain)
    helper = make_user("pilot", username="helper")
    nobody = make_user("pilot", username="nobody")
    _post(pilot, intervention, "claim")

    refused = _post(pilot, intervention, "delegate", {"to": "nobody"})
    assign_perm("view_workflow", helper, run.workflow)
    delegated = _post(pilot, intervention, "delegate", {"to": "helper"})

    assert refused.status_code == 400 and list(refused.json()["error"]["details"]) == ["to"]
    assert delegated.json()["assignee"] == "helper" and delegated.json()["status"] == "OPEN"
    assert _post(helper, intervention, "resolve", {"decision": "approve"}).status_code == 200
    assert nobody


def test_anyone_who_can_see_it_may_comment(start, drain, pilot):
    _, intervention = _open(start, drain)

    response = _post(pilot, intervention, "comment", {"text": "Asking legal."})

    assert response.json()["comments"][0]["text"] == "Asking legal."
    assert response.json()["comments"][0]["author"] == pilot.username
