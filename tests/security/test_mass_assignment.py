"""Mass assignment: fields a caller may not set (who owns, created, started, published or resolved
something, its id, status, version or slug) are ignored when sent beside the fields an act
takes, and refused inside a definition's spec; nothing but what the act does changes."""

import uuid

import pytest

from agents.models import Agent, Provider
from guardians.models import Guardian
from interventions.models import Intervention, Status
from tests.conftest import drain
from tests.workflows.test_api import client_for
from workflows.models import Run, RunStatus, Workflow

pytestmark = pytest.mark.django_db

FLOW = "slug: {slug}\nsteps: [{{id: ask, human: {{type: approval, group: pilot}}}}]\n"
SIM = {"slug": "sim", "kind": "simulated"}
AGENT = {"slug": "helper", "prompt": "hi", "chain": [{"provider": "sim", "model": "m"}]}
GUARDIAN = {"slug": "gate", "kind": "PASS_THRU"}


@pytest.fixture
def people(make_user):
    admin = make_user("admin", superuser=True)
    return admin, make_user("service"), make_user("pilot")


def _spoofed(admin) -> dict:
    """What a caller might try to set, naming someone else."""
    return {
        "id": str(uuid.uuid4()), "owner": admin.username, "created_by": admin.username,
        "started_by": admin.username, "published_by": admin.username,
        "resolved_by": admin.username, "claimed_by": admin.username, "assignee": admin.username,
        "status": "COMPLETED", "current_version": 99, "number": 99, "checksum": "0" * 64,
        "cost_usd": "0", "slug": "renamed", "enabled": False, "paused": True,
    }  # fmt: skip


def test_a_workflow_created_with_spoofed_fields_is_the_callers_version_1(people):
    admin, service, _ = people

    response = client_for(service).post(
        "/api/workflows/", {**_spoofed(admin), "spec": FLOW.format(slug="mine")}, format="json"
    )

    assert response.status_code == 201, response.content
    workflow = Workflow.objects.get(slug="mine")
    assert (workflow.owner, workflow.paused, workflow.current_version.number) == (service, False, 1)
    assert workflow.current_version.published_by == service
    assert not Workflow.objects.filter(slug="renamed").exists()


@pytest.mark.parametrize("field", ["owner", "created_by", "published_by", "current_version"])
def test_a_spec_naming_who_owns_or_published_it_is_refused(people, field):
    admin, service, _ = people
    spec = FLOW.format(slug="mine") + f"{field}: {admin.username}\n"

    response = client_for(service).post("/api/workflows/", {"spec": spec}, format="json")

    assert response.status_code == 400, response.content
    assert not Workflow.objects.filter(slug="mine").exists()


def test_patching_a_workflow_changes_its_paused_flag_and_nothing_else(people, make_workflow):
    admin, service, _ = people
    workflow = make_workflow(FLOW.format(slug="mine"), owner=service)
    before = Workflow.objects.values().get(pk=workflow.pk)

    response = client_for(service).patch(
        "/api/workflows/mine/", {**_spoofed(admin), "paused": True, "name": "x"}, format="json"
    )

    assert response.status_code == 200, response.content
    after = Workflow.objects.values().get(pk=workflow.pk)
    assert {k for k in after if after[k] != before[k]} == {"paused", "updated_at"}


def test_a_version_published_with_spoofed_fields_is_the_next_one_by_the_caller(
    people, make_workflow
):
    admin, service, _ = people
    make_workflow(FLOW.format(slug="mine"), owner=service)
    spec = FLOW.format(slug="mine") + "name: second\n"

    response = client_for(service).post(
        "/api/workflows/mine/versions/", {**_spoofed(admin), "spec": spec}, format="json"
    )

    assert response.status_code == 201, response.content
    current = Workflow.objects.get(slug="mine").current_version
    assert (current.number, current.published_by) == (2, service)


def test_a_run_started_with_spoofed_fields_is_a_new_run_started_by_the_caller(
    people, make_workflow
):
    admin, service, _ = people
    make_workflow(FLOW.format(slug="mine"), owner=service)
    spoofed = _spoofed(admin)
    ctx = {"started_by": admin.username, "run_id": spoofed["id"], "workflow": "other"}

    response = client_for(service).post(
        "/api/workflows/mine/runs/", {**spoofed, "inputs": {}, "ctx": ctx}, format="json"
    )

    assert response.status_code == 201, response.content
    run = Run.objects.get()
    assert str(run.pk) != spoofed["id"] and run.started_by == service
    assert run.status != RunStatus.COMPLETED
    assert (run.ctx["started_by"], run.ctx["run_id"], run.ctx["workflow"]) == (
        service.username, str(run.pk), "mine",
    )  # fmt: skip


def _waiting(make_workflow, owner) -> Intervention:
    workflow = make_workflow(FLOW.format(slug="asking"), owner=owner)
    client_for(owner).post(f"/api/workflows/{workflow.slug}/runs/", {}, format="json")
    drain()
    return Intervention.objects.get()


def test_claiming_resolving_and_delegating_record_the_caller_whatever_the_body_says(
    people, make_workflow
):
    admin, _, pilot = people
    intervention = _waiting(make_workflow, pilot)
    pilot_api, path = client_for(pilot), f"/api/interventions/{intervention.pk}"

    claimed = pilot_api.post(f"{path}/claim/", _spoofed(admin), format="json")
    claimed_by = Intervention.objects.get().claimed_by
    delegated = pilot_api.post(f"{path}/delegate/", {**_spoofed(admin), "to": pilot.username},
                               format="json")  # fmt: skip
    assignee = Intervention.objects.get().assignee
    resolved = pilot_api.post(
        f"{path}/resolve/", {**_spoofed(admin), "decision": "approve"}, format="json"
    )

    assert [claimed.status_code, delegated.status_code, resolved.status_code] == [200] * 3
    intervention.refresh_from_db()
    assert (claimed_by, assignee, intervention.resolved_by) == (pilot, pilot, pilot)
    assert intervention.status == Status.RESOLVED


def test_cancelling_a_run_makes_it_cancelled_whatever_status_the_body_names(people, make_workflow):
    admin, _, pilot = people
    intervention = _waiting(make_workflow, pilot)

    response = client_for(pilot).post(
        f"/api/runs/{intervention.run_id}/cancel/", _spoofed(admin), format="json"
    )

    assert response.status_code == 200, response.content
    assert Run.objects.get().status == RunStatus.CANCELLED


def test_definitions_created_with_spoofed_fields_belong_to_the_caller(people, operator):
    admin, _, _ = people
    api = client_for(operator)

    created = [
        api.post(f"/api/{kind}/", {**_spoofed(admin), "spec": spec}, format="json").status_code
        for kind, spec in (("providers", SIM), ("agents", AGENT), ("guardians", GUARDIAN))
    ]

    assert created == [201, 201, 201]
    agent, guardian = Agent.objects.get(), Guardian.objects.get()
    assert Provider.objects.get().created_by == agent.created_by == guardian.created_by == operator
    assert (agent.slug, agent.enabled, agent.current_version.number) == ("helper", True, 1)
    assert agent.current_version.published_by == guardian.current_version.published_by == operator
    assert guardian.current_version.number == 1


@pytest.mark.parametrize(
    ("kind", "spec"), [("providers", SIM), ("agents", AGENT), ("guardians", GUARDIAN)]
)
def test_a_definition_spec_naming_who_created_it_is_refused(people, operator, kind, spec):
    admin, _, _ = people

    response = client_for(operator).post(
        f"/api/{kind}/", {"spec": {**spec, "created_by": admin.username}}, format="json"
    )

    assert response.status_code == 400, response.content


def test_editing_definitions_changes_what_the_act_changes_and_nothing_else(people, operator):
    admin, _, _ = people
    api = client_for(operator)
    for kind, spec in (("providers", SIM), ("agents", AGENT)):
        api.post(f"/api/{kind}/", {"spec": spec}, format="json")
    agent_before = Agent.objects.values().get()

    put = api.put("/api/providers/sim/", {**_spoofed(admin), "spec": {**SIM, "timeout_s": 9}},
                  format="json")  # fmt: skip
    patch = api.patch("/api/agents/helper/", {**_spoofed(admin), "enabled": False}, format="json")

    assert (put.status_code, patch.status_code) == (200, 200)
    provider = Provider.objects.get()
    assert (provider.slug, provider.created_by, provider.spec["timeout_s"]) == ("sim", operator, 9)
    agent_after = Agent.objects.values().get()
    assert {k for k in agent_after if agent_after[k] != agent_before[k]} <= {
        "enabled", "updated_at"
    }  # fmt: skip
    assert agent_after["enabled"] is False
