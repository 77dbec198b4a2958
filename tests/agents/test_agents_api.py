"""The providers, agents and LLM calls API: definitions validated whole with paths, nothing
saved when wrong, breakers shown and reset, and a run's calls visible exactly when the run is."""

import pytest

from accounts.models import AuditEntry
from agents import breaker
from agents.models import Agent, AgentVersion, Provider
from agents.specs import BreakerSpec
from tests.workflows.test_api import assert_error, client_for
from workflows.engine import api

pytestmark = pytest.mark.django_db

SIM = {"slug": "sim", "kind": "simulated", "simulated": {"latency_s": 0}}
AGENT = {
    "slug": "helper",
    "prompt": "Help with {{ topic }}",
    "chain": [{"provider": "sim", "model": "m"}],
}


@pytest.fixture
def ops(operator):
    return client_for(operator)


def test_a_provider_is_created_shown_with_its_breaker_edited_in_place_and_reset(ops):
    created = ops.post("/api/providers/", {"spec": SIM}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["breaker"] == {"state": "closed", "failures": 0, "opened_at": None}

    config = BreakerSpec(failures=1)
    breaker.breaker_record("sim", config, breaker.breaker_permit("sim", config), ok=False)
    assert ops.get("/api/providers/sim/").json()["breaker"]["state"] == "open"
    reset = ops.post("/api/providers/sim/reset/")
    assert reset.json()["breaker"]["state"] == "closed"
    config = BreakerSpec(failures=1)
    breaker.breaker_record("sim", config, breaker.breaker_permit("sim", config), ok=False)
    assert ops.get("/api/providers/sim/").json()["breaker"]["opened_at"].startswith("20")

    edited = ops.put("/api/providers/sim/", {"spec": {**SIM, "timeout_s": 5}}, format="json")
    assert edited.json()["spec"]["timeout_s"] == 5
    assert Provider.objects.count() == 1
    assert_error(ops.post("/api/providers/", {"spec": SIM}, format="json"), 409, "exists")


def test_an_invalid_provider_is_a_400_naming_every_path_and_nothing_is_saved(ops):
    spec = {
        "slug": "Bad Slug",
        "kind": "openai",
        "api_key": "sk-secret",
        "prices": {"m": {"input": -1}},
    }

    body = assert_error(ops.post("/api/providers/", {"spec": spec}, format="json"), 400)

    assert {"slug", "api_key", "prices.m.input", "prices.m.output"} <= set(body["details"])
    assert body["details"]["api_key"] == ["unknown field"]
    assert not Provider.objects.exists()
    priced = {"slug": "sim", "kind": "simulated", "prices": {"m": {"input": 1, "output": 1}}}
    assert "costs nothing" in str(
        assert_error(ops.post("/api/providers/", {"spec": priced}, format="json"), 400)
    )
    yaml_body = assert_error(
        ops.post("/api/providers/", {"spec": "slug: x\nkind: openai\n"}, format="json"), 400
    )
    assert "needs base_url" in str(yaml_body["details"])


def test_an_agent_is_versioned_and_an_unchanged_spec_publishes_nothing(ops):
    ops.post("/api/providers/", {"spec": SIM}, format="json")

    created = ops.post("/api/agents/", {"spec": AGENT}, format="json")
    second = ops.post(
        "/api/agents/helper/versions/", {"spec": {**AGENT, "max_tokens": 9}}, format="json"
    )
    same = ops.post(
        "/api/agents/helper/versions/", {"spec": {**AGENT, "max_tokens": 9}}, format="json"
    )

    assert created.status_code == 201 and created.json()["current_version"]["number"] == 1
    assert (second.status_code, second.json()["number"]) == (201, 2)
    assert (same.status_code, same.json()["number"]) == (200, 2)
    versions = ops.get("/api/agents/helper/versions/").json()["results"]
    assert [version["number"] for version in versions] == [2, 1]
    assert ops.get("/api/agents/helper/").json()["current_version"]["spec"]["max_tokens"] == 9
    disabled = ops.patch("/api/agents/helper/", {"enabled": False}, format="json")
    assert disabled.json()["enabled"] is False
    assert AuditEntry.objects.filter(action="agent.disable").count() == 1


def test_an_invalid_agent_is_a_400_naming_every_path_and_nothing_is_saved(ops):
    ops.post("/api/providers/", {"spec": SIM}, format="json")
    spec = {
        **AGENT,
        "prompt": "{{ unclosed",
        "chain": [{"provider": "sim", "model": "m"}, {"provider": "nowhere", "model": "m"}],
        "fallback_agent": "helper",
        "output_schema": {"type": "not-a-type"},
    }

    body = assert_error(ops.post("/api/agents/", {"spec": spec}, format="json"), 400)

    assert {"prompt", "chain[1].provider", "fallback_agent", "output_schema.type"} <= set(
        body["details"]
    )
    assert not Agent.objects.exists() and not AgentVersion.objects.exists()


def test_definitions_are_invisible_without_permission_and_closed_to_change(ops, make_user):
    ops.post("/api/providers/", {"spec": SIM}, format="json")
    ops.post("/api/agents/", {"spec": AGENT}, format="json")
    pilot = client_for(make_user("pilot"))

    assert pilot.get("/api/providers/").json()["results"] == []
    assert pilot.get("/api/agents/").json()["results"] == []
    assert_error(pilot.get("/api/providers/sim/"), 404)
    assert_error(pilot.get("/api/agents/helper/"), 404)
    assert_error(pilot.post("/api/providers/sim/reset/"), 404)
    assert_error(pilot.post("/api/agents/", {"spec": AGENT}, format="json"), 403)
    assert_error(client_for().get("/api/providers/"), 401)


def test_a_run_s_llm_calls_are_listed_for_those_who_see_the_run(
    ops, operator, make_user, make_workflow, drain
):
    ops.post("/api/providers/", {"spec": SIM}, format="json")
    ops.post("/api/agents/", {"spec": AGENT}, format="json")
    workflow = make_workflow("slug: helped\nsteps: [{id: ask, agent: helper, with: {topic: tea}}]")
    run, _ = api.run_start(workflow=workflow, inputs={}, started_by=operator)
    drain()

    calls = ops.get(f"/api/runs/{run.pk}/llm-calls/").json()["results"]
    detail = ops.get(f"/api/runs/{run.pk}/").json()

    assert [(c["provider"], c["agent"], c["agent_version"], c["outcome"]) for c in calls] == [
        ("sim", "helper", 1, "ok")
    ]
    assert calls[0]["simulated"] is True and calls[0]["cost_usd"] == 0
    assert detail["cost_usd"] == 0 and detail["budget_usd"] is None
    assert_error(client_for(make_user("viewer")).get(f"/api/runs/{run.pk}/llm-calls/"), 404)
