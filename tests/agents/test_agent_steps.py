"""Agent steps end to end, in-process (`drain`): answers, retries, fallback, costs, breakers,
cache, skips and escalations; vendors are a local server speaking their wire formats."""

from decimal import Decimal

import pytest
from django.core.cache import cache

from agents.models import LLMCall
from agents.services import agent_version_publish
from tests.test_metrics import sample
from workflows.engine import api
from workflows.models import Run, RunStatus, StepRun, StepStatus, Workflow

pytestmark = pytest.mark.django_db

ASK = """
slug: ask-AGENT
inputs: {question: {type: string, default: "why?"}}
steps:
  - id: ask
    agent: AGENT
    with: {question: "{{ inputs.question }}"}
"""


def run_of(make_workflow, operator, agent_slug: str, drain, **inputs) -> Run:
    workflow = Workflow.objects.filter(slug=f"ask-{agent_slug}").first()
    workflow = workflow or make_workflow(ASK.replace("AGENT", agent_slug))
    run, _ = api.run_start(workflow=workflow, inputs=inputs, started_by=operator)
    drain()
    run.refresh_from_db()
    return run


def output_of(run: Run, step_id: str = "ask"):
    return StepRun.objects.get(run=run, step_id=step_id).output


def calls_of(run: Run) -> list[tuple]:
    rows = LLMCall.objects.filter(run_id=run.pk).order_by("at", "pk")
    return list(rows.values_list("provider", "attempt", "outcome", "error_code"))


def test_a_simulated_agent_answers_with_the_full_output_at_no_cost(
    provider, agent, make_workflow, operator, drain
):
    provider("sim")
    agent("echoer", [("sim", "echo-1")])

    run = run_of(make_workflow, operator, "echoer", drain, question="what is 6*7?")

    output = output_of(run)
    assert run.status == RunStatus.COMPLETED
    assert output["text"] == "echo: Answer: what is 6*7?"
    assert output | {"text": None, "usage": None} == {
        "text": None, "data": None, "provider": "sim", "model": "echo-1", "agent": "echoer",
        "agent_version": 1, "usage": None, "cost_usd": 0.0, "cached": False, "degraded": False,
        "simulated": True,
    }  # fmt: skip
    assert output["usage"]["input_tokens"] > 0
    call = LLMCall.objects.get(run_id=run.pk)
    assert (call.simulated, call.cost_usd, call.outcome) == (True, 0, "ok")
    assert run.events.filter(type="llm.attempt").count() == 1


def test_json_output_is_validated_and_drives_a_when(
    provider, agent, make_workflow, operator, drain
):
    provider("sim", simulated={"script": {"rater": '```json\n{"score": 8}\n```'}})
    agent("rater", [("sim", "rater")],
          output_schema={"type": "object", "required": ["score"],
                         "properties": {"score": {"type": "number"}}})  # fmt: skip
    workflow = make_workflow(
        """
slug: rate
steps:
  - id: rate
    agent: rater
    with: {question: "risky?"}
  - id: alarm
    needs: [rate]
    when: "steps.rate.output.data.score > 5"
    tool: noop
    with: {value: "high"}
"""
    )
    run, _ = api.run_start(workflow=workflow, inputs={}, started_by=operator)
    drain()

    assert output_of(run, "rate")["data"] == {"score": 8}
    assert StepRun.objects.get(run=run, step_id="alarm").status == StepStatus.SUCCEEDED


def test_an_answer_failing_the_output_schema_is_a_failed_attempt(
    provider, agent, make_workflow, operator, drain
):
    provider("sim", simulated={"script": {"*": '{"score": "high"}'}})
    agent("strict", [("sim", "m")], output_schema={"type": "object",
          "properties": {"score": {"type": "number"}}})  # fmt: skip

    run = run_of(make_workflow, operator, "strict", drain)

    step_run = StepRun.objects.get(run=run)
    assert (run.status, step_run.error_code) == (RunStatus.FAILED, "agent_unavailable")
    assert calls_of(run) == [("sim", 1, "error", "invalid_output")]
    assert "data.score" in LLMCall.objects.get(run_id=run.pk).error


def test_a_flaky_vendor_is_retried_and_every_attempt_is_costed_exactly(
    llm, provider, agent, make_workflow, operator, drain
):
    prices = {"gpt-test": {"input": 1.5, "output": 6}}
    provider("vendor", "openai", base_url=llm.base_url("openai"), prices=prices)
    agent("retrier", [("vendor", "gpt-test")], retry={"max_attempts": 3, "backoff_s": 0.01})
    llm.then(("status", 500), ("malformed",), ("ok", "fine", 1000, 500))

    run = run_of(make_workflow, operator, "retrier", drain)

    assert run.status == RunStatus.COMPLETED
    assert calls_of(run) == [
        ("vendor", 1, "error", "http_500"), ("vendor", 2, "error", "bad_reply"),
        ("vendor", 3, "ok", ""),
    ]  # fmt: skip
    assert run.cost_usd == Decimal("0.0045")  # 1000 * 1.5 / 1e6 + 500 * 6 / 1e6
    assert run.cost_usd == sum(
        LLMCall.objects.filter(run_id=run.pk).values_list("cost_usd", flat=True)
    )
    assert output_of(run)["cost_usd"] == 0.0045


def test_a_refusal_is_not_retried_and_the_chain_moves_to_the_next_vendor(
    llm, provider, agent, make_workflow, operator, drain, monkeypatch
):
    monkeypatch.setenv("TEST_ANTHROPIC_KEY", "sk-ant-test")
    provider("first", "openai", base_url=llm.base_url("openai"))
    provider("second", "anthropic", base_url=llm.base_url("anthropic"),
             api_key_env="TEST_ANTHROPIC_KEY")  # fmt: skip
    agent("chained", [("first", "a"), ("second", "b")], retry={"max_attempts": 3, "backoff_s": 0})
    llm.then(("status", 401), ("ok", "from anthropic", 3, 4))

    run = run_of(make_workflow, operator, "chained", drain)

    assert calls_of(run) == [("first", 1, "error", "http_401"), ("second", 1, "ok", "")]
    assert output_of(run)["provider"] == "second"
    assert [request["path"] for request in llm.requests] == ["/v1/chat/completions", "/v1/messages"]
    assert llm.requests[1]["headers"]["x-api-key"] == "sk-ant-test"
    assert run.events.filter(type="llm.switch").count() == 1


def test_a_missing_key_variable_is_named_recorded_and_the_chain_goes_on(
    provider, agent, make_workflow, operator, drain
):
    provider("keyed", "anthropic", base_url="http://127.0.0.1:9", api_key_env="NO_SUCH_KEY_VAR")
    provider("sim")
    agent("keyless", [("keyed", "a"), ("sim", "b")])

    run = run_of(make_workflow, operator, "keyless", drain)

    missing = LLMCall.objects.filter(run_id=run.pk, error_code="missing_key").get()
    assert "NO_SUCH_KEY_VAR" in missing.error
    assert output_of(run)["provider"] == "sim"


def test_a_prompt_reading_a_missing_field_fails_the_step_naming_agent_and_field(
    provider, agent, make_workflow, operator, drain
):
    provider("sim")
    agent("nosy", [("sim", "m")], prompt="Summarise {{ summary }}")

    run = run_of(make_workflow, operator, "nosy", drain)

    step_run = StepRun.objects.get(run=run)
    assert step_run.error_code == "template_error"
    assert "agent 'nosy'" in step_run.error and "'summary' is undefined" in step_run.error


def test_when_the_chain_is_exhausted_the_fallback_agent_answers_and_the_run_is_degraded(
    llm, provider, agent, make_workflow, operator, drain
):
    provider("down", "ollama", base_url=llm.base_url("ollama"))
    provider("sim")
    agent("lite", [("sim", "small")])
    agent(
        "primary",
        [("down", "big")],
        fallback_agent="lite",
        retry={"max_attempts": 2, "backoff_s": 0},
    )
    llm.then(("status", 503), ("status", 503))

    run = run_of(make_workflow, operator, "primary", drain)

    output = output_of(run)
    assert (output["agent"], output["degraded"], run.degraded) == ("lite", True, True)
    assert run.events.filter(type="llm.fallback").count() == 1


def test_skip_if_unavailable_skips_the_step_and_marks_the_run_degraded(
    llm, provider, agent, make_workflow, operator, drain
):
    provider("down", "openai", base_url=llm.base_url("openai"))
    agent("optional", [("down", "m")], skip_if_unavailable=True, retry={"max_attempts": 1})
    llm.then(("status", 500))

    run = run_of(make_workflow, operator, "optional", drain)

    step_run = StepRun.objects.get(run=run)
    assert (step_run.status, run.status, run.degraded) == (
        StepStatus.SKIPPED,
        RunStatus.COMPLETED,
        True,
    )
    assert "agent 'optional' unavailable" in step_run.error


def test_on_failure_escalate_holds_the_step_for_someone_to_decide(
    llm, provider, agent, make_workflow, operator, drain
):
    provider("down", "openai", base_url=llm.base_url("openai"))
    agent("critical", [("down", "m")], retry={"max_attempts": 1})
    llm.then(("status", 500))
    workflow = make_workflow(ASK.replace("AGENT", "critical") + "    on_failure: escalate\n")
    run, _ = api.run_start(workflow=workflow, inputs={}, started_by=operator)
    drain()

    step_run = StepRun.objects.get(run=run)
    assert (step_run.status, step_run.wait_reason) == (StepStatus.WAITING, "escalated")
    api.step_override(step_run_id=step_run.pk, ref=step_run.wait_ref, output={"text": "by hand"})
    drain()
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED


def test_the_breaker_opens_after_failures_and_skips_the_vendor_until_reset(
    llm, provider, agent, make_workflow, operator, drain, client, make_user
):
    provider("flaky", "openai", base_url=llm.base_url("openai"),
             breaker={"failures": 2, "window_s": 60, "cooldown_s": 60})  # fmt: skip
    provider("sim")
    agent("guarded", [("flaky", "m"), ("sim", "m")], retry={"max_attempts": 2, "backoff_s": 0})
    llm.then(("status", 500), ("status", 500))

    first = run_of(make_workflow, operator, "guarded", drain)
    second = run_of(make_workflow, operator, "guarded", drain)

    assert len(llm.requests) == 2
    assert first.events.filter(type="llm.breaker", payload__state="open").exists()
    assert calls_of(second)[0] == ("flaky", 1, "skipped", "breaker_open")
    assert output_of(second)["provider"] == "sim"
    client.force_login(make_user(superuser=True))
    scrape = client.get("/metrics").content.decode()
    assert sample(scrape, "chameleon_circuit_open", provider="flaky") == 1


def test_a_cached_answer_costs_nothing_and_a_new_version_does_not_read_it(
    llm, provider, agent, make_workflow, operator, drain
):
    provider(
        "vendor", "openai", base_url=llm.base_url("openai"), prices={"m": {"input": 1, "output": 1}}
    )
    cached = agent("cached", [("vendor", "m")], cache_ttl_s=60)

    first = run_of(make_workflow, operator, "cached", drain, question="same")
    again = run_of(make_workflow, operator, "cached", drain, question="same")
    agent_version_publish(agent=cached, source={**cached.current_version.spec, "cache_ttl_s": 120})
    newer = run_of(make_workflow, operator, "cached", drain, question="same")

    assert len(llm.requests) == 2
    assert (output_of(first)["cached"], output_of(again)["cached"], output_of(newer)["cached"]) == (
        False, True, False,
    )  # fmt: skip
    assert again.cost_usd == 0 and first.cost_usd > 0
    assert again.events.filter(type="llm.cache_hit").count() == 1
    cache.clear()


def test_a_capability_routes_to_the_first_agent_whose_chain_is_not_all_open(
    llm, provider, agent, make_workflow, operator, drain
):
    provider("dead", "openai", base_url=llm.base_url("openai"), breaker={"failures": 1})
    provider("sim")
    agent("a-first", [("dead", "m")], capabilities=["risk"], retry={"max_attempts": 1})
    agent("b-second", [("sim", "m")], capabilities=["risk"])
    llm.then(("status", 500))
    workflow = make_workflow(
        "slug: routed\nsteps: [{id: ask, capability: risk, with: {question: q}}]"
    )

    outputs = []
    for _ in range(2):
        run, _ = api.run_start(workflow=workflow, inputs={}, started_by=operator)
        drain()
        outputs.append(output_of(run))

    assert outputs[0] is None  # a-first was chosen and failed, which opened its breaker
    assert outputs[1]["agent"] == "b-second"
