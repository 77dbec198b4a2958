"""Agent steps (`agent: <slug>`) against a local OpenAI-format server, measured in one invocation.
See bench/README.md.

    .venv/bin/python bench/agents.py [--repeat 3] [--calls 500] [--runs 200] [--delay 1.0]

(a) In this process, per call to a server that answers at once: what an executor thread runs for
    an agent step but the engine's claim and record transactions (runner.claim_perform: execute()
    - catalog, render, adapter, retries, breaker, accounting, the LLMCall rows put on the outcome -
    and the outcome check) vs a bare httpx POST of the same body; target <= 1.3. Also the breaker
    check (agents.breaker.breaker_permit) against Redis: p99 <= 1 ms.
(b) 200 runs of a workflow of 5 independent agent steps (1,000 calls) to a server that answers
    after 1 s, on two worker processes, vs an asyncio+httpx floor making the same 1,000 calls at
    once: steps per second, target >= 100, and the peak PostgreSQL connections (target <= 30).
"""

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

# Run as a script, this file's folder heads sys.path, and this module's name would shadow the
# `agents` app: the project's root takes its place (bench.run puts it first anyway).
ROOT = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)

from bench import run  # noqa: E402  (sets the bench environment up and calls django.setup())

# isort: split
import httpx  # noqa: E402
import redis  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402

from agents import catalog  # noqa: E402
from agents.breaker import breaker_permit  # noqa: E402
from agents.calling import Ledger, chain_answer  # noqa: E402
from agents.executor import AgentExecutor  # noqa: E402
from agents.models import Agent, LLMCall  # noqa: E402
from agents.services import agent_create, agent_version_publish, provider_save  # noqa: E402
from bench import leased  # noqa: E402
from tests.llmserver import ok_document  # noqa: E402
from workflows.engine import api  # noqa: E402
from workflows.engine.runner import Claim, claim_perform  # noqa: E402
from workflows.models import Workflow  # noqa: E402
from workflows.services import workflow_create, workflow_version_publish  # noqa: E402

CHAT = "/v1/chat/completions"
PROVIDER, AGENT, MODEL, WORKFLOW = "bench-openai", "bench-agent", "bench-model", "bench-agents-5"
SYSTEM, PROMPT, MAX_TOKENS = "You answer briefly.", "Answer: {{ question }}", 64
PARALLEL = 5  # agent steps per run, all `needs: []`
WARMUP_CALLS, BREAKER_CHECKS, WARMUP_RUNS = 50, 5000, 4
TARGET_OVERHEAD, TARGET_BREAKER_MS, TARGET_RATE, TARGET_CONNECTIONS = 1.3, 1.0, 100, 30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds of (a) and of (b)")
    parser.add_argument("--calls", type=int, default=500, help="(a): calls of each kind a round")
    parser.add_argument("--runs", type=int, default=200, help=f"(b): runs of {PARALLEL} steps")
    parser.add_argument("--delay", type=float, default=1.0, help="(b): seconds to each answer")
    args = parser.parse_args()

    run.database_prepare()
    LLMCall.objects.all().delete()  # not a run's row: TRUNCATE of the runs leaves them
    redis.Redis.from_url(run.REDIS_URL).flushdb()  # breakers among others
    user = get_user_model().objects.get_or_create(username="bench")[0]
    server = LLMServer()
    try:
        definitions_ensure(user, server.url)
        environment = argparse.Namespace(workers=1, concurrency=2, repeat=args.repeat)
        print(run.environment_line(environment), flush=True)
        per_call, breaker = measure_per_call(server, args.calls, args.repeat)
        print(
            f"(b) {args.repeat} rounds of {args.runs} runs x {PARALLEL} agent steps answered after"
            f" {args.delay:g}s, on {run.LEASED_WORKERS} celery worker(s), each --pool prefork"
            f" --concurrency {run.LEASED_CONCURRENCY}",
            flush=True,
        )
        server.delay = args.delay
        steps = measure_steps(server, workflow_ensure(user), user, args)
    finally:
        server.close()
    report(per_call, breaker, steps, args)


# -- the local vendor and the definitions --------------------------------------------------------


class LLMServer(leased.SlowServer):
    """leased.SlowServer (its counters, so that leased.leased_round can drive it), answering every
    POST after `delay` with an OpenAI chat completion (tests/llmserver.py's document); its listen
    backlog takes a thousand calls connecting at once."""

    request_queue_size = 4096

    def __init__(self):
        super().__init__(0.0)
        self.RequestHandlerClass = _LLMHandler  # before any call: nobody knows the port yet


class _LLMHandler(leased._SlowHandler):  # its log_message: not a line on stderr per call
    def do_POST(self):
        server = self.server
        with server.lock:
            server.in_flight += 1
            server.peak = max(server.peak, server.in_flight)
        try:
            model = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["model"]
            time.sleep(server.delay)
            body = json.dumps(ok_document("openai", model, "Fine, thanks.", 12, 7)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        finally:
            with server.lock:
                server.in_flight -= 1
                server.served += 1


def definitions_ensure(user, url: str) -> None:
    """The openai-kind provider on the local server (its port moves: edited in place), priced so
    that costs are computed, and the agent calling it."""
    prices = {MODEL: {"input": 3, "output": 15}}
    provider_save(
        source={"slug": PROVIDER, "kind": "openai", "base_url": f"{url}/v1", "prices": prices},
        by=user,
    )
    spec = {
        "slug": AGENT, "system": SYSTEM, "prompt": PROMPT, "max_tokens": MAX_TOKENS,
        "chain": [{"provider": PROVIDER, "model": MODEL}],
    }  # fmt: skip
    agent = Agent.objects.filter(slug=AGENT).first()
    if agent is None:
        agent_create(source=spec, by=user)
    else:
        agent_version_publish(agent=agent, source=spec, by=user)


def workflow_ensure(user) -> Workflow:
    steps = [
        {"id": f"ask{i}", "agent": AGENT, "needs": [], "with": {"question": f"q{i}?"}}
        for i in range(PARALLEL)
    ]
    workflow = Workflow.objects.filter(slug=WORKFLOW).first()
    if workflow is None:
        return workflow_create(source={"slug": WORKFLOW, "steps": steps}, created_by=user)
    workflow_version_publish(workflow=workflow, source={"slug": WORKFLOW, "steps": steps},
                             published_by=user)  # fmt: skip
    workflow.refresh_from_db()
    return workflow


# -- (a) per call, in this process ---------------------------------------------------------------


def step_claim() -> Claim:
    """What the engine's claim would hand an executor thread for one attempt of a step of a run
    without a budget (no run row: the outcome's LLMCall rows name their run by id only)."""
    step = api.StepSpec.model_validate({"id": "ask", "agent": AGENT, "with": {"question": "hi?"}})
    context = api.StepContext(
        run_id=str(uuid.uuid4()), step_run_id=0, step=step, params=step.params,
        input={"question": "hi?"}, iteration=0, attempt=1, timeout_s=step.timeout_s,
        idempotency_key="bench", started_by_id=None, ctx={"workflow": WORKFLOW},
        claim=uuid.uuid4(),
    )  # fmt: skip
    return Claim(context.run_id, 0, context.claim, AgentExecutor(), context)


def measure_per_call(server: LLMServer, calls: int, rounds: int) -> tuple[dict, list[list]]:
    """Bare POST, the step and chain_answer() in turn, call by call, so drift touches all; after
    each round, BREAKER_CHECKS breaker checks (seconds each, a list a round)."""
    claim = step_claim()
    chosen = catalog.agent_current(AGENT)
    providers = catalog.providers_of(chosen.spec)
    prompt = api.template_render(PROMPT, claim.context.input)
    body = {
        "model": MODEL, "max_tokens": MAX_TOKENS,
        "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prompt}],
    }  # fmt: skip
    client, url = httpx.Client(), server.url + CHAT

    def bare():
        response = client.post(url, json=body, timeout=30)
        assert response.status_code == 200 and response.json()["usage"], response.text

    def step():
        outcome = claim_perform(claim)
        assert isinstance(outcome, api.Done) and len(outcome.records) == 1, outcome

    def chain():
        answer = chain_answer(Ledger(claim.context), chosen.version_id, chosen.spec, providers,
                              SYSTEM, prompt)  # fmt: skip
        assert answer is not None

    kinds = {"bare": bare, "step": step, "chain_answer": chain}
    times, breaker = {kind: [] for kind in kinds}, []
    for _ in range(WARMUP_CALLS):  # also fills the catalog (re-read every CATALOG_TTL_S after)
        for call in kinds.values():
            call()
    print(f"(a) {rounds} rounds of {calls} calls of each kind, in turn", flush=True)
    for attempt in range(1, rounds + 1):
        mark = len(times["bare"])
        for _ in range(calls):
            for kind, call in kinds.items():
                started = time.perf_counter()
                call()
                times[kind].append(time.perf_counter() - started)
        breaker.append(breaker_seconds(providers[PROVIDER].breaker))
        means = ", ".join(
            f"{kind} {statistics.mean(values[mark:]) * 1000:.3f}" for kind, values in times.items()
        )
        print(
            f"  (a) round {attempt}/{rounds}: mean ms per call: {means};"
            f" breaker_permit p99 {percentile(breaker[-1], 0.99) * 1000:.3f}",
            flush=True,
        )
    client.close()
    return times, breaker


def breaker_seconds(config) -> list[float]:
    """breaker_permit of the (closed) provider's breaker, one Redis read each: seconds per call."""
    seconds = []
    for _ in range(BREAKER_CHECKS):
        started = time.perf_counter()
        permit = breaker_permit(PROVIDER, config)
        seconds.append(time.perf_counter() - started)
        assert permit.allowed
    return seconds


# -- (b) 1,000 steps on the workers vs the asyncio floor -----------------------------------------


def measure_steps(server: LLMServer, workflow: Workflow, user, args) -> list[dict]:
    db = {**run.db_params(), "dbname": settings.DATABASES["default"]["NAME"]}
    steps = args.runs * PARALLEL
    results = []
    workers = run.Workers(run.LEASED_WORKERS, run.LEASED_CONCURRENCY)
    try:
        leased.leased_round(workflow, user, WARMUP_RUNS, server, db)
        for attempt in range(1, args.repeat + 1):
            floor = floor_seconds(server, steps)  # first: the workers are idle meanwhile
            calls_before = LLMCall.objects.count()
            result = leased.leased_round(workflow, user, args.runs, server, db)
            result |= {"floor": floor, "llm_calls": LLMCall.objects.count() - calls_before}
            results.append(result)
            print(f"  (b) round {attempt}/{args.repeat}: {round_text(result, steps)}", flush=True)
    finally:
        workers.stop()
    return results


def floor_seconds(server: LLMServer, calls: int) -> float:
    """`calls` POSTs of a chat completion, all at once on one asyncio loop: the wall time."""

    async def all_at_once() -> float:
        body = {"model": MODEL, "max_tokens": MAX_TOKENS,
                "messages": [{"role": "user", "content": "Answer: q0?"}]}  # fmt: skip
        limits = httpx.Limits(max_connections=None)
        async with httpx.AsyncClient(limits=limits, timeout=60) as client:
            url, started = server.url + CHAT, time.monotonic()
            responses = await asyncio.gather(*(client.post(url, json=body) for _ in range(calls)))
            wall = time.monotonic() - started
        assert all(response.status_code == 200 for response in responses)
        return wall

    return asyncio.run(all_at_once())


def round_text(result: dict, steps: int) -> str:
    text = (
        f"engine {result['wall']:.2f}s ({steps / result['wall']:.0f} steps/s; all runs started"
        f" in {result['start']:.2f}s), floor {result['floor']:.2f}s"
        f" ({steps / result['floor']:.0f} steps/s); runs {result['completed']} completed,"
        f" {result['failed']} failed; {result['calls']} calls served, {result['llm_calls']}"
        f" LLMCall rows, peak {result['in_flight']} in flight; peak {result['connections']}"
        " PostgreSQL connections"
    )
    return text + (f"; first error: {str(result['error'])[:300]}" if result["error"] else "")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def report(per_call: dict, breaker: list[float], steps: list[dict], args) -> None:
    bare_ms, step_ms, chain_ms = (
        statistics.mean(per_call[kind]) * 1000 for kind in ("bare", "step", "chain_answer")
    )
    breaker_p99 = statistics.median(percentile(checks, 0.99) for checks in breaker) * 1000
    total = args.runs * PARALLEL
    rate = statistics.median(total / result["wall"] for result in steps)
    floor_rate = statistics.median(total / result["floor"] for result in steps)
    connections = max(result["connections"] for result in steps)
    rows = [
        ("(a) agent step (claim_perform) / bare POST: mean ms", step_ms, bare_ms, "ms",
         f"<= {TARGET_OVERHEAD}", step_ms / bare_ms <= TARGET_OVERHEAD),
        ("    chain_answer() with a Ledger (no catalog, no check)", chain_ms, bare_ms, "ms",
         f"<= {TARGET_OVERHEAD}", chain_ms / bare_ms <= TARGET_OVERHEAD),
        (f"(a) breaker_permit p99, ms (median of {len(breaker)})", breaker_p99, None, "ms",
         f"<= {TARGET_BREAKER_MS:g} ms", breaker_p99 <= TARGET_BREAKER_MS),
        (f"(b) {total} agent steps: steps/s (median of {len(steps)})", rate, floor_rate, "/s",
         f">= {TARGET_RATE}", rate >= TARGET_RATE),
        ("(b) peak PostgreSQL connections", connections, None, "", f"<= {TARGET_CONNECTIONS}",
         connections <= TARGET_CONNECTIONS),
    ]  # fmt: skip
    header = (
        f"{'measurement':<56} {'agents':>11} {'bare|floor':>11} {'ratio':>7} {'target':>9}  result"
    )
    print(f"\n{header}\n{'-' * len(header)}")
    for name, value, base, unit, target, met in rows:
        ratio = f"{value / base:>7.2f}" if base else f"{'':>7}"
        base_text = f"{base:>8.2f} {unit:<2}" if base else f"{'':>11}"
        print(
            f"{name:<56} {value:>8.2f} {unit:<2} {base_text} {ratio} {target:>9}"
            f"  {'met' if met else 'MISSED'}"
        )
    medians = ", ".join(
        f"{kind} {statistics.median(values) * 1000:.3f}" for kind, values in per_call.items()
    )
    print(f"\n  (a) {len(per_call['bare'])} calls of each kind; median ms per call: {medians}")
    checks = [seconds for each in breaker for seconds in each]
    print(
        f"  (a) breaker_permit, {BREAKER_CHECKS} checks a round: p99 ms"
        f" {', '.join(f'{percentile(each, 0.99) * 1000:.3f}' for each in breaker)};"
        f" all {len(checks)}: median {statistics.median(checks) * 1000:.3f} ms,"
        f" p99 {percentile(checks, 0.99) * 1000:.3f} ms, max {max(checks) * 1000:.3f} ms"
    )
    for key, label, spec in (
        ("wall", "engine seconds", ".3f"), ("floor", "floor seconds", ".3f"),
        ("in_flight", "peak calls in flight", ""), ("connections", "peak connections", ""),
    ):  # fmt: skip
        print(f"  (b) {label}: {', '.join(format(result[key], spec) for result in steps)}")
    print(f"  load average now: {', '.join(f'{value:.2f}' for value in os.getloadavg())}")


if __name__ == "__main__":
    main()
