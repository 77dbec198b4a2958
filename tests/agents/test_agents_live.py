"""Agent steps on real `celery worker` processes, real Redis and PostgreSQL: breakers that every
process shares, and calls leased into each process's pool; vendors are a local server speaking
OpenAI's wire format. And budgets under parallel calls and timeouts: never overshot, every
call costed."""

import json
import subprocess
import sys
import time
from decimal import Decimal

import pytest

from agents import breaker
from agents.models import LLMCall
from agents.specs import BreakerSpec
from tests.conftest import ROOT, wait_for, wait_for_run, worker_environment
from tests.test_metrics import sample
from workflows.engine import api
from workflows.models import RunStatus, StepRun

pytestmark = pytest.mark.django_db(transaction=True)

ASK = """
slug: ask-AGENT
steps:
  - id: ask
    agent: AGENT
    with: {question: "why?"}
"""


@pytest.fixture(autouse=True)
def _fresh_breakers_and_answers():
    """Reset only this module's breakers: the package's cache.clear() is a FLUSHDB of the Redis
    the live worker's broker uses too. (No agent here caches answers.)"""
    for slug in ("shaky", "twin", "sulky", "sluggish"):
        breaker.breaker_reset(slug)


def calls_of(run) -> list[tuple]:
    rows = LLMCall.objects.filter(run_id=run.pk).order_by("at", "pk")
    return list(rows.values_list("provider", "outcome", "error_code"))


def start_runs(workflow, operator, count: int = 1, **kwargs):
    return [
        api.run_start(workflow=workflow, inputs={}, started_by=operator, **kwargs)[0]
        for _ in range(count)
    ]


GUARDED = """
slug: guarded-pair
steps:
  - id: ask
    foreach: "[1, 2]"
    concurrency: 1
    agent: guarded
    with: {question: "item {{ item }}"}
"""


def test_a_breaker_opened_by_one_process_makes_the_worker_skip_the_vendor_without_a_call(
    celery_worker, llm, provider, agent, make_workflow, operator
):
    # given: a vendor failing twice through another process, which opens its breaker
    provider("shaky", "openai", base_url=llm.base_url("openai"),
             breaker={"failures": 2, "window_s": 60, "cooldown_s": 60})  # fmt: skip
    provider("backup")
    agent("guarded", [("shaky", "m"), ("backup", "m")], retry={"max_attempts": 1})
    llm.then(("status", 500), ("status", 500))
    make_workflow(GUARDED)
    # Its own in-memory broker: no worker sees its steps, it executes them itself.
    env = worker_environment(through_pgbouncer=False) | {"CELERY_BROKER_URL": "memory://"}
    other = subprocess.run(
        [sys.executable, "manage.py", "run_workflow", "guarded-pair", "--wait", "--inline"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert other.returncode == 0, other.stdout + other.stderr
    assert len(llm.requests) == 2
    assert breaker.breaker_state("shaky", BreakerSpec(cooldown_s=60)).state == breaker.OPEN

    # when: the worker's processes run the agent
    [run] = start_runs(make_workflow(ASK.replace("AGENT", "guarded")), operator)
    run = wait_for_run(run)

    # then
    assert run.status == RunStatus.COMPLETED
    assert calls_of(run) == [("shaky", "skipped", "breaker_open"), ("backup", "ok", "")]
    assert len(llm.requests) == 2  # no new request


PERMIT = """
import json, sys, time
import django
django.setup()
from django.core.cache import cache
from agents.breaker import breaker_permit
from agents.specs import BreakerSpec
cache.get("warm-up")  # connected before the instant
print("ready", flush=True)
at = float(sys.stdin.readline())
time.sleep(max(0, at - time.time()))
permit = breaker_permit(sys.argv[1], BreakerSpec(cooldown_s=float(sys.argv[2])))
print(json.dumps({"allowed": permit.allowed, "trial": permit.trial}), flush=True)
"""


def test_two_processes_half_opening_a_breaker_at_once_get_one_trial():
    # given: a breaker opened here, and cooled down
    config = BreakerSpec(failures=2, window_s=60, cooldown_s=0.5)
    for _ in range(2):
        breaker.breaker_record("twin", config, breaker.breaker_permit("twin", config), ok=False)
    assert breaker.breaker_state("twin", config).state == breaker.OPEN
    env = worker_environment(through_pgbouncer=False)
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", PERMIT, "twin", "0.5"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(2)
    ]
    for process in processes:
        assert process.stdout.readline().strip() == "ready"
    assert breaker.breaker_state("twin", config).state == breaker.HALF_OPEN

    # when: both ask at the same wall-clock instant
    at = time.time() + 0.3
    for process in processes:
        process.stdin.write(f"{at}\n")
        process.stdin.flush()
    permits = [json.loads(process.communicate(timeout=30)[0]) for process in processes]

    # then
    assert sorted(permits, key=lambda p: p["trial"]) == [
        {"allowed": False, "trial": False},
        {"allowed": True, "trial": True},
    ]


def test_after_the_cool_down_parallel_steps_on_the_worker_make_one_trial_call(
    celery_worker, llm, provider, agent, make_workflow, operator
):
    # given: an open breaker that has cooled down, and a vendor still failing, slowly
    config = {"failures": 1, "window_s": 60, "cooldown_s": 2}
    provider("sulky", "openai", base_url=llm.base_url("openai"), breaker=config)
    provider("spare")
    agent("careful", [("sulky", "m"), ("spare", "m")], retry={"max_attempts": 3, "backoff_s": 0})
    spec = BreakerSpec(**config)
    breaker.breaker_record("sulky", spec, breaker.breaker_permit("sulky", spec), ok=False)
    workflow = make_workflow(ASK.replace("AGENT", "careful"))
    time.sleep(2.1)
    assert breaker.breaker_state("sulky", spec).state == breaker.HALF_OPEN
    llm.delay_s = 0.5
    llm.then(("status", 500))

    # when: eight steps ask at once on the worker's two processes
    runs = [wait_for_run(run) for run in start_runs(workflow, operator, 8)]

    # then: one trial, one attempt (no retries), and the breaker open again
    assert len(llm.requests) == 1
    first_calls = [calls_of(run)[0] for run in runs]
    assert (
        sorted(first_calls)
        == [("sulky", "error", "http_500")] + [("sulky", "skipped", "breaker_open")] * 7
    )
    assert {run.status for run in runs} == {RunStatus.COMPLETED}  # answered by the spare
    assert breaker.breaker_state("sulky", spec).state == breaker.OPEN

    # and: after the next cool-down, one good trial closes it
    time.sleep(2.1)
    llm.delay_s = 0
    [run] = [wait_for_run(run) for run in start_runs(workflow, operator)]
    assert calls_of(run) == [("sulky", "ok", "")]
    assert breaker.breaker_state("sulky", spec).state == breaker.CLOSED


def test_agent_steps_are_leased_into_the_pool_so_slow_calls_wait_together(
    celery_worker, llm, provider, agent, make_workflow, operator
):
    # given: a vendor answering after a second
    provider("sluggish", "openai", base_url=llm.base_url("openai"))
    agent("patient", [("sluggish", "m")])
    llm.delay_s = 1.0
    workflow = make_workflow(ASK.replace("AGENT", "patient"))

    # when: twenty runs, one agent step each, on a worker of two processes
    started = time.monotonic()
    runs = [wait_for_run(run) for run in start_runs(workflow, operator, 20)]
    took = time.monotonic() - started

    # then: one at a time per process would take 10 s
    arrivals = sorted(request["at"] for request in llm.requests)
    together = sum(at < arrivals[0] + llm.delay_s for at in arrivals)
    print(f"\n20 runs of a 1 s agent step took {took:.2f}s; {together} calls in flight at once")
    assert {run.status for run in runs} == {RunStatus.COMPLETED}
    assert len(arrivals) == 20
    assert together > 2  # more than the worker's two processes
    assert took < 8


FANOUT = """
slug: fanout
steps:
  - id: ask
    foreach: "range(20) | list"
    concurrency: 20
    agent: priced
    with: {question: "item {{ item }}"}
"""


def test_twenty_parallel_agent_steps_on_the_worker_make_exactly_the_calls_the_budget_fits(
    celery_worker, llm, provider, agent, make_workflow, operator
):
    # given: a call may cost up to 1,000 output tokens at 100 USD a million = 0.1 USD, and
    # costs exactly that; the budget fits five
    provider("metered", "openai", base_url=llm.base_url("openai"),
             prices={"gpt-metered": {"input": 0, "output": 100}})  # fmt: skip
    agent("priced", [("metered", "gpt-metered")], max_tokens=1000, retry={"max_attempts": 1})
    llm.delay_s = 0.5  # so the calls overlap
    llm.then(*[("ok", "paid", 40, 1000)] * 20)
    workflow = make_workflow(FANOUT)

    # when
    [run] = start_runs(workflow, operator, budget_usd=Decimal("0.5"))
    run = wait_for_run(run)
    # The refused steps end the run at once; the calls made finish after it.
    wait_for(lambda: LLMCall.objects.filter(run_id=run.pk, outcome="ok").count()
             >= len(llm.requests) > 0, what="the calls in flight to finish")  # fmt: skip
    time.sleep(0.7)  # any sixth call would have reached the server by now
    run.refresh_from_db()

    # then
    arrivals = sorted(request["at"] for request in llm.requests)
    print(f"\n{len(arrivals)} calls sent; arrival spread {arrivals[-1] - arrivals[0]:.3f}s")
    assert len(llm.requests) == 5
    assert arrivals[-1] - arrivals[0] < llm.delay_s  # all in flight before the first answered
    spent = sum(LLMCall.objects.filter(run_id=run.pk).values_list("cost_usd", flat=True))
    assert spent == Decimal("0.5")
    assert run.cost_usd <= run.budget_usd
    assert run.cost_usd == spent
    assert run.reserved_usd == 0
    refused = StepRun.objects.filter(run=run, error_code="budget_exceeded")
    assert refused.exists()
    error = refused.first().error
    assert "run budget 0.500000 USD" in error and "may cost up to 0.1" in error
    assert run.status == RunStatus.FAILED


SLOW_RETRIED = """
slug: slow-retried
steps:
  - id: ask
    agent: slow-paid
    with: {question: "why?"}
    timeout_s: 1
    retry: {max_attempts: 3, backoff_s: 0.1, max_backoff_s: 0.1}
"""


def test_a_timed_out_call_keeps_its_hold_so_the_retries_cannot_overshoot_the_budget(
    celery_worker, llm, provider, agent, make_workflow, operator
):
    # given: calls that outlive the step's 1 s timeout, 0.1 USD each, a budget that fits two
    provider("slowpay", "openai", base_url=llm.base_url("openai"), timeout_s=30,
             prices={"m": {"input": 0, "output": 100}})  # fmt: skip
    agent("slow-paid", [("slowpay", "m")], max_tokens=1000, retry={"max_attempts": 1})
    llm.delay_s = 1.5
    llm.then(*[("ok", "paid", 40, 1000)] * 5)

    [run] = start_runs(make_workflow(SLOW_RETRIED), operator, budget_usd=Decimal("0.25"))
    run = wait_for_run(run, timeout=30)
    wait_for(lambda: LLMCall.objects.filter(run_id=run.pk, outcome="ok").count()
             >= len(llm.requests), what="the late calls to be recorded")  # fmt: skip
    time.sleep(0.5)
    run.refresh_from_db()

    spent = sum(LLMCall.objects.filter(run_id=run.pk).values_list("cost_usd", flat=True))
    assert len(llm.requests) <= 2
    assert run.cost_usd == spent <= run.budget_usd
    assert run.reserved_usd == 0
    assert set(StepRun.objects.filter(run=run).values_list("reserved_usd", flat=True)) == {0}


def test_llm_metrics_from_worker_processes_reach_the_web_scrape(
    celery_worker, llm, provider, agent, make_workflow, operator, make_user, client
):
    provider("metrics-vendor", "openai", base_url=llm.base_url("openai"),
             prices={"m": {"input": 1, "output": 2}})  # fmt: skip
    agent("metered", [("metrics-vendor", "m")])
    llm.then(("ok", "counted", 300, 200))
    labels = {"provider": "metrics-vendor", "model": "m"}
    client.force_login(make_user(superuser=True))

    [run] = start_runs(make_workflow(ASK.replace("AGENT", "metered")), operator)
    assert wait_for_run(run).status == RunStatus.COMPLETED

    deadline = time.monotonic() + 10
    while True:
        scrape = client.get("/metrics").content.decode()
        if sample(scrape, "chameleon_llm_calls_total", outcome="ok", **labels) or (
            time.monotonic() > deadline
        ):
            break
        time.sleep(0.05)
    assert sample(scrape, "chameleon_llm_calls_total", outcome="ok", **labels) == 1
    assert sample(scrape, "chameleon_llm_tokens_total", direction="input", **labels) == 300
    assert sample(scrape, "chameleon_llm_tokens_total", direction="output", **labels) == 200
    assert sample(scrape, "chameleon_llm_cost_usd_total", **labels) == pytest.approx(0.0007)
