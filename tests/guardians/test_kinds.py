"""What each kind of guardian decides, on what evidence, and what one that fails decides."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from guardians.evaluation import evaluate, evaluate_many

pytestmark = pytest.mark.django_db


def _context(score=0.5, cost=0.1, budget=0.5, age=10.0, **steps):
    return {
        "inputs": {"budget_usd": budget},
        "state": {},
        "ctx": {},
        "steps": {"risk": {"status": "SUCCEEDED", "output": {"data": {"score": score}}}, **steps},
        "run": {"id": "r", "status": "RUNNING", "cost_usd": cost, "age_s": age},
    }


def test_a_pass_thru_allows_and_reads_nothing(guardian):
    verdict = evaluate(guardian("audit-point", "PASS_THRU"), _context())
    assert (verdict.outcome, verdict.evidence) == ("allow", {})


def test_a_criteria_gate_needs_every_all_rule_and_reports_what_its_rules_read(guardian):
    version = guardian("confidence", "CRITERIA_GATE", {
        "all": ["steps.risk.output.data.score < 0.7", "run.cost_usd <= inputs.budget_usd"],
        "else": "escalate",
    })  # fmt: skip

    allowed = evaluate(version, _context(score=0.5))
    escalated = evaluate(version, _context(score=0.9))
    over_budget = evaluate(version, _context(cost=0.6))

    assert allowed.outcome == "allow"
    assert escalated.outcome == "escalate"
    assert escalated.reason == "all[0] does not hold: steps.risk.output.data.score < 0.7"
    assert escalated.evidence == {
        "inputs.budget_usd": 0.5, "run.cost_usd": 0.1, "steps.risk.output.data.score": 0.9,
    }  # fmt: skip
    assert over_budget.reason.startswith("all[1] does not hold")


def test_a_criteria_gate_s_any_rules_need_one_to_hold_and_else_defaults_to_block(guardian):
    version = guardian("either", "CRITERIA_GATE", {"any": ["run.age_s < 5", "run.cost_usd < 1"]})

    assert evaluate(version, _context(age=100, cost=0.5)).outcome == "allow"
    blocked = evaluate(version, _context(age=100, cost=2))
    assert blocked.outcome == "block"
    assert blocked.reason == "no rule of any holds: run.age_s < 5; run.cost_usd < 1"


def test_a_directional_filter_routes_by_the_first_matching_rule_else_the_default(guardian):
    version = guardian("by-score", "DIRECTIONAL_FILTER", {
        "rules": [
            {"when": "steps.risk.output.data.score >= 0.7", "route": ["legal"]},
            {"when": "steps.risk.output.data.score >= 0.3", "route": ["review", "legal"]},
        ],
        "default": ["archive"],
    })  # fmt: skip

    high, middle, low = (evaluate(version, _context(score=s)) for s in (0.9, 0.5, 0.1))

    assert (high.outcome, high.route) == ("route", ("legal",))
    assert middle.route == ("review", "legal") and middle.reason.startswith("rules[1] matched")
    assert (low.route, low.reason) == (("archive",), "no rule matched: the default branch")
    assert low.evidence == {"steps.risk.output.data.score": 0.1}


def test_a_directional_filter_without_a_default_lets_every_branch_run(guardian):
    version = guardian("maybe", "DIRECTIONAL_FILTER", {"rules": [{"when": "false", "route": []}]})
    assert evaluate(version, _context()).outcome == "allow"


def test_a_ttl_check_measures_the_run_s_age_or_a_timestamp_against_the_ttl(guardian):
    by_run = guardian("fresh-run", "TTL_CHECK", {"ttl_s": 60})
    by_value = guardian("fresh-quote", "TTL_CHECK", {
        "value": "steps.quote.output.at", "ttl_s": 60, "else": "escalate",
    })  # fmt: skip
    now = datetime.now(UTC)

    def quoted(at):
        return _context(quote={"status": "SUCCEEDED", "output": {"at": at}})

    assert evaluate(by_run, _context(age=10)).outcome == "allow"
    stale = evaluate(by_run, _context(age=61))
    assert (stale.outcome, stale.reason) == ("block", "61 s old, over the TTL of 60 s")
    assert evaluate(by_value, quoted((now - timedelta(seconds=5)).isoformat())).outcome == "allow"
    assert evaluate(by_value, quoted(time.time() - 120)).outcome == "escalate"
    unreadable = evaluate(by_value, quoted("yesterday"))
    assert unreadable.outcome == "block" and "not a timestamp" in unreadable.error


def test_cerberus_allows_when_every_head_succeeded_and_they_agree(guardian):
    version = guardian("three-heads", "CERBERUS", {"heads": ["a", "b"], "agree_on": "label"})

    def heads(a, b, b_status="SUCCEEDED"):
        return {"a": {"status": "SUCCEEDED", "output": {"label": a}},
                "b": {"status": b_status, "output": {"label": b}}}  # fmt: skip

    agreed = evaluate(version, {"steps": heads("ok", "ok")})
    split = evaluate(version, {"steps": heads("ok", "no")})
    failed = evaluate(version, {"steps": heads("ok", "ok", b_status="FAILED")})

    assert (agreed.outcome, agreed.reason) == ("allow", "the heads agree on label: 'ok'")
    assert (split.outcome, split.reason) == ("escalate", "the heads disagree on label: a='ok', "
                                             "b='no'")  # fmt: skip
    assert split.evidence["steps.b.output.label"] == "no"
    assert failed.reason == "b is FAILED"
    assert evaluate(version, {"steps": {}}).reason == "a is not run; b is not run"


@pytest.mark.parametrize(
    ("mode", "outcome", "reason"),
    [
        ("all", "block", "strict: all[0] does not hold: run.cost_usd < 0"),
        ("any", "allow", "allowed by open"),
        ("first", "escalate", "wary: all[0] does not hold: run.cost_usd < 0"),
    ],
)
def test_a_composite_chains_the_current_versions_of_others(guardian, mode, outcome, reason):
    guardian("wary", "CRITERIA_GATE", {"all": ["run.cost_usd < 0"], "else": "escalate"})
    guardian("open", "PASS_THRU")
    guardian("strict", "CRITERIA_GATE", {"all": ["run.cost_usd < 0"]})
    members = ["wary", "open", "strict"]
    version = guardian("chain", "COMPOSITE", {"mode": mode, "guardians": members})

    verdict = evaluate(version, _context())

    assert (verdict.outcome, verdict.reason) == (outcome, reason)
    asked = [member["guardian"] for member in verdict.evidence["members"]]
    assert asked == (["wary"] if mode == "first" else members)


def test_a_guardian_that_raises_records_the_error_and_applies_on_error(guardian):
    blocking = guardian("reads-missing", "CRITERIA_GATE", {"all": ["steps.risk.output.nope > 1"]})
    lenient = guardian("lenient", "CRITERIA_GATE", {
        "all": ["true", "steps.risk.output.gone"]}, on_error="escalate")  # fmt: skip

    verdict = evaluate(blocking, _context())
    second = evaluate(lenient, _context())

    assert verdict.outcome == "block"
    assert verdict.error.startswith("config.all[0]: ") and "nope" in verdict.error
    assert verdict.reason.startswith("failed, so on_error applies (block): config.all[0]")
    assert (second.outcome, second.error.split(":")[0]) == ("escalate", "config.all[1]")


def test_evaluate_many_decides_a_batch_in_order(guardian):
    version = guardian("batch", "CRITERIA_GATE", {"all": ["steps.risk.output.data.score < 0.7"]})
    contexts = [_context(score=s) for s in (0.1, 0.9, 0.2)] + [{"steps": {}}]

    outcomes = [verdict.outcome for verdict in evaluate_many(version, contexts)]

    assert outcomes == ["allow", "block", "allow", "block"]
