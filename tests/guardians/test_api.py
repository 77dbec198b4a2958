"""The guardians API: definitions validated whole with the field named, nothing saved when
wrong, versions immutable, dry runs touching no run, and a run's decisions visible exactly when
the run is."""

import pytest

from accounts.models import AuditEntry
from guardians.models import Guardian, GuardianDecision, GuardianVersion
from tests.workflows.test_api import assert_error, client_for
from workflows.engine import api
from workflows.models import Run

pytestmark = pytest.mark.django_db

GATE = {"slug": "confidence", "kind": "CRITERIA_GATE",
        "config": {"all": ["steps.risk.output.score < 0.7"], "else": "escalate"}}  # fmt: skip
YAML = """
slug: confidence
kind: CRITERIA_GATE
config: {all: ["steps.risk.output.score < 0.7"], else: escalate}
on_error: block
"""
FLOW = """
slug: guarded
steps:
  - {id: risk, tool: noop, with: {value: {score: 0.9}}}
  - {id: decide, tool: noop, guard: [confidence]}
"""


@pytest.fixture
def ops(operator):
    return client_for(operator)


def test_a_guardian_is_created_from_yaml_shown_and_published_as_a_next_version(ops, operator):
    created = ops.post("/api/guardians/", {"spec": YAML}, format="json")
    assert created.status_code == 201, created.json()
    assert created.json()["current_version"]["number"] == 1
    assert created.json()["current_version"]["config"] == GATE["config"]

    loosened = {**GATE, "config": {"any": ["run.cost_usd < 1"]}}
    published = ops.post("/api/guardians/confidence/versions/", {"spec": loosened}, format="json")
    same = ops.post("/api/guardians/confidence/versions/", {"spec": loosened}, format="json")

    assert (published.status_code, published.json()["number"]) == (201, 2)
    assert (same.status_code, same.json()["number"]) == (200, 2)
    versions = ops.get("/api/guardians/confidence/versions/").json()["results"]
    assert [version["number"] for version in versions] == [2, 1]
    assert ops.get("/api/guardians/confidence/").json()["current_version"]["number"] == 2
    listed = ops.get("/api/guardians/").json()["results"]
    assert [guardian["slug"] for guardian in listed] == ["confidence"]
    entries = AuditEntry.objects.filter(action="guardian.publish").order_by("at")
    assert [entry.after["version"] for entry in entries] == [1, 2]
    assert_error(ops.post("/api/guardians/", {"spec": GATE}, format="json"), 409, "exists")


@pytest.mark.parametrize(
    ("spec", "paths"),
    [
        ({**GATE, "config": {"all": ["score <", "steps.x.output > 1"]}}, {"config.all[0]"}),
        ({**GATE, "config": {"all": ["scor > 1"]}}, {"config.all[0]"}),
        ({**GATE, "config": {"all": ["true"], "else": "maybe"}}, {"config.else"}),
        ({**GATE, "slug": "Bad", "colour": "red"}, {"slug", "colour"}),
        ({"slug": "x", "kind": "TTL_CHECK", "config": {"ttl_s": -1}}, {"config.ttl_s"}),
        (
            {"slug": "x", "kind": "COMPOSITE", "config": {"guardians": ["x", "nobody"]}},
            {"config.guardians[0]", "config.guardians[1]"},
        ),  # fmt: skip
        (
            {"slug": "x", "kind": "CERBERUS", "config": {"heads": ["a"], "agree_on": "a..b"}},
            {"config.heads", "config.agree_on"},
        ),  # fmt: skip
        ({"slug": "x", "kind": "SPHINX"}, {"kind"}),
    ],
)
def test_an_invalid_guardian_is_a_400_naming_the_field_and_nothing_is_saved(ops, spec, paths):
    body = assert_error(ops.post("/api/guardians/", {"spec": spec}, format="json"), 400)

    assert set(body["details"]) == paths
    assert not Guardian.objects.exists() and not GuardianVersion.objects.exists()


def test_an_expression_error_names_the_rule(ops):
    spec = {**GATE, "config": {"all": ["true", "score <"]}}

    body = assert_error(ops.post("/api/guardians/", {"spec": spec}, format="json"), 400)

    assert body["message"].startswith("Invalid spec: config.all[1]: syntax error in 'score <'")


def test_a_composite_cannot_close_a_cycle(ops):
    for slug in ("a", "b"):
        ops.post("/api/guardians/", {"spec": {"slug": slug, "kind": "PASS_THRU"}}, format="json")
    chain = {"slug": "a", "kind": "COMPOSITE", "config": {"guardians": ["b"]}}
    assert ops.post("/api/guardians/a/versions/", {"spec": chain}, format="json").status_code == 201
    back = {"slug": "b", "kind": "COMPOSITE", "config": {"guardians": ["a"]}}

    body = assert_error(ops.post("/api/guardians/b/versions/", {"spec": back}, format="json"), 400)

    assert body["details"] == {"config.guardians[0]": ["cycle: b -> a -> b"]}
    assert GuardianVersion.objects.filter(guardian__slug="b").count() == 1


def test_published_versions_are_immutable(ops):
    ops.post("/api/guardians/", {"spec": GATE}, format="json")
    version = GuardianVersion.objects.get()

    version.config = {"all": ["true"]}
    with pytest.raises(ValueError, match="immutable"):
        version.save()


def test_a_dry_run_evaluates_a_sample_context_and_touches_no_run(ops):
    ops.post("/api/guardians/", {"spec": GATE}, format="json")
    payload = {"steps": {"risk": {"status": "SUCCEEDED", "output": {"score": 0.9}}}}

    answer = ops.post("/api/guardians/confidence/evaluate/", {"payload": payload}, format="json")

    assert answer.status_code == 200, answer.json()
    assert answer.json() == {
        "outcome": "escalate",
        "reason": "all[0] does not hold: steps.risk.output.score < 0.7",
        "evidence": {"steps.risk.output.score": 0.9},
        "route": [],
        "error": "",
    }
    assert not GuardianDecision.objects.exists() and not Run.objects.exists()
    missing = ops.post("/api/guardians/confidence/evaluate/", {"payload": {}}, format="json")
    assert missing.json()["outcome"] == "block" and "steps" in missing.json()["error"]
    assert_error(ops.post("/api/guardians/confidence/evaluate/", {"payload": 3}, format="json"),
                 400)  # fmt: skip


def test_others_see_no_guardians_and_may_not_create_them(ops, make_user):
    ops.post("/api/guardians/", {"spec": GATE}, format="json")
    pilot = client_for(make_user("pilot"))

    assert pilot.get("/api/guardians/").json()["results"] == []
    assert_error(pilot.get("/api/guardians/confidence/"), 404)
    assert_error(pilot.post("/api/guardians/confidence/evaluate/", {"payload": {}},
                            format="json"), 404)  # fmt: skip
    assert_error(pilot.post("/api/guardians/", {"spec": {**GATE, "slug": "x"}}, format="json"), 403)
    assert_error(client_for().get("/api/guardians/"), 401)


def test_a_run_s_decisions_are_listed_for_those_who_see_the_run(ops, operator, make_user, drain):
    ops.post("/api/guardians/", {"spec": GATE}, format="json")
    workflow = ops.post("/api/workflows/", {"spec": FLOW}, format="json")
    assert workflow.status_code == 201, workflow.json()
    run = ops.post("/api/workflows/guarded/runs/", {"inputs": {}}, format="json").json()
    drain()

    decisions = ops.get(f"/api/runs/{run['id']}/decisions/").json()["results"]

    assert [(d["step_id"], d["guardian"], d["guardian_version"], d["outcome"]) for d in decisions] \
        == [("decide", "confidence", 1, "escalate")]  # fmt: skip
    assert decisions[0]["evidence"] == {"steps.risk.output.score": 0.9}
    assert api.run_visible(user=operator, run_id=run["id"]).status == "WAITING"
    stranger = client_for(make_user("pilot"))
    assert_error(stranger.get(f"/api/runs/{run['id']}/decisions/"), 404)


def test_listing_a_run_s_decisions_costs_the_same_queries_however_many_there_are(
    ops, operator, drain, django_assert_max_num_queries
):
    ops.post("/api/guardians/", {"spec": {"slug": "audit-point", "kind": "PASS_THRU"}},
             format="json")  # fmt: skip
    steps = ", ".join(f"{{id: s{i}, tool: noop}}" for i in range(12))
    ops.post("/api/workflows/", {"spec": f"slug: audited\nguards: [audit-point]\nsteps: [{steps}]"},
             format="json")  # fmt: skip
    run = ops.post("/api/workflows/audited/runs/", {"inputs": {}}, format="json").json()
    drain()

    with django_assert_max_num_queries(6):
        listed = ops.get(f"/api/runs/{run['id']}/decisions/").json()["results"]

    assert len(listed) == 12 and {d["guardian"] for d in listed} == {"audit-point"}
