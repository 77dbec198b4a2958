"""One agent's answer: its chain of provider/model pairs walked in order, each pair behind its
breaker, each attempt within the run's budget, retried in one layer (agents.wire), and every
attempt written down (a Ledger: LLMCall rows, run events, the cost)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from decimal import Decimal

import httpx
import jsonschema
from django.utils import timezone

from agents import breaker, metrics
from agents.models import CallOutcome, LLMCall
from agents.specs import AgentSpec, ProviderSpec
from agents.wire import (
    Attempt,
    ProviderError,
    Reply,
    Request,
    api_key_from_env,
    send_with_retries,
    simulate,
)
from workflows.engine import api

MILLION = Decimal(1_000_000)
CHAT_OVERHEAD_TOKENS = 32
_client = httpx.Client(follow_redirects=False)  # one per process: connections are reused


class BudgetExceeded(Exception):
    pass


@dataclass
class Ledger:
    """What a step's agent calls did: the LLMCall rows, the run events and the cost so far."""

    context: api.StepContext
    calls: list[LLMCall] = field(default_factory=list)
    events: list[tuple[str, dict]] = field(default_factory=list)
    cost: Decimal = Decimal(0)

    def call(self, version_id: int, provider: str, model: str, **values) -> LLMCall:
        row = LLMCall(
            run_id=self.context.run_id, step_run_id=self.context.step_run_id,
            step_id=self.context.step.id, workflow=self.context.ctx.get("workflow", ""),
            agent_version_id=version_id, provider=provider,
            model=model, at=timezone.now(), **values,
        )  # fmt: skip
        self.calls.append(row)
        self.cost += row.cost_usd
        payload = {
            "provider": provider, "model": model, "attempt": row.attempt, "outcome": row.outcome,
            "latency_ms": row.latency_ms, "input_tokens": row.input_tokens,
            "output_tokens": row.output_tokens, "cost_usd": str(row.cost_usd),
        }  # fmt: skip
        if row.error:
            payload["error"] = row.error
        self.events.append(("llm.attempt", payload))
        return row

    def event(self, event_type: str, **payload) -> None:
        self.events.append((event_type, payload))


@dataclass(frozen=True)
class Answer:
    text: str
    data: object
    provider: str
    model: str
    usage: dict
    simulated: bool


def cost_of(provider: ProviderSpec, model: str, input_tokens: int, output_tokens: int) -> Decimal:
    price = provider.price(model)
    if price is None:
        return Decimal(0)
    return (price.input * input_tokens + price.output * output_tokens) / MILLION


def prompt_tokens_at_most(request: Request) -> int:
    """An upper bound of the prompt's tokens, for the budget's worst case: byte-level tokenizers
    make at most one token per UTF-8 byte; plus the chat template's own tokens."""
    return len(request.system.encode()) + len(request.prompt.encode()) + CHAT_OVERHEAD_TOKENS


def chain_answer(
    ledger: Ledger,
    version_id: int,
    agent: AgentSpec,
    providers: dict[str, ProviderSpec],
    system: str,
    prompt: str,
) -> Answer | None:
    """The first pair of the chain that answers, or None when every pair failed or was skipped.
    Raises BudgetExceeded (the call was not made) when the run cannot pay for the next attempt."""
    for index, link in enumerate(agent.chain):
        if index:
            previous = agent.chain[index - 1]
            ledger.event("llm.switch", agent=agent.slug, to=f"{link.provider}/{link.model}",
                         **{"from": f"{previous.provider}/{previous.model}"})  # fmt: skip
        provider = providers.get(link.provider)
        request = Request(link.model, system, prompt, agent.max_tokens,
                          provider.timeout_s if provider else 0)  # fmt: skip
        if provider is None:
            ledger.call(version_id, link.provider, link.model, attempt=1,
                        outcome=CallOutcome.SKIPPED, error="the provider no longer exists",
                        error_code="no_provider")  # fmt: skip
            continue
        answer = _pair_answer(ledger, version_id, agent, provider, request)
        if answer is not None:
            return answer
    return None


def _pair_answer(ledger, version_id, agent: AgentSpec, provider: ProviderSpec, request: Request):
    slug, model = provider.slug, request.model
    permit = breaker.breaker_permit(slug, provider.breaker)
    if not permit.allowed:
        ledger.call(version_id, slug, model, attempt=1, outcome=CallOutcome.SKIPPED,
                    error="breaker open: not called", error_code="breaker_open")  # fmt: skip
        return None
    worst = cost_of(provider, model, prompt_tokens_at_most(request), agent.max_tokens)
    held = {"amount": Decimal(0)}
    priced = provider.kind == "simulated" or provider.price(model) is not None

    def before(number: int) -> None:
        if not api.budget_reserve(ledger.context, worst):
            left = api.budget_left(ledger.context)
            ledger.call(version_id, slug, model, attempt=number, outcome=CallOutcome.SKIPPED,
                        error=f"not sent: the run's budget has {left} USD left, this call may "
                        f"cost up to {worst}", error_code="budget_exceeded")  # fmt: skip
            raise BudgetExceeded(
                f"agent '{agent.slug}': run budget {ledger.context.budget_usd} USD has {left} left;"
                f" a call to {slug}/{model} may cost up to {worst}"
            )
        held["amount"] = worst
        api.connection_release()  # the reservation is made; what follows waits on the network

    def after(attempt: Attempt) -> None:
        tokens = attempt.reply and (attempt.reply.input_tokens, attempt.reply.output_tokens)
        tokens = tokens or (attempt.error and attempt.error.usage) or (0, 0)
        cost = cost_of(provider, model, *tokens)
        api.budget_settle(ledger.context, held["amount"], cost)
        api.connection_release()  # a retry may wait its backoff next
        held["amount"] = Decimal(0)
        error = attempt.error
        row = ledger.call(
            version_id, slug, model, attempt=attempt.number,
            outcome=CallOutcome.ERROR if error else CallOutcome.OK,
            latency_ms=round(attempt.latency_s * 1000), input_tokens=tokens[0],
            output_tokens=tokens[1], cost_usd=cost, priced=priced,
            simulated=provider.kind == "simulated",
            error=error.message if error else "", error_code=error.code if error else "",
        )  # fmt: skip
        metrics.call_counted(row)
        if error is None or error.code not in ("missing_key", "invalid_output"):
            changed = breaker.breaker_record(slug, provider.breaker, permit, ok=error is None)
            if changed:
                ledger.event("llm.breaker", provider=slug, state=changed)
                metrics.breaker_seen(slug, changed)

    validate = _validator(agent)
    try:
        if provider.kind == "simulated":
            reply = _simulated(provider, request, before, after, validate)
        else:
            reply = send_with_retries(
                provider.kind, base_url=provider.base_url,
                api_key=api_key_from_env(provider.api_key_env), request=request, client=_client,
                max_attempts=1 if permit.trial else agent.retry.max_attempts,
                backoff_s=agent.retry.backoff_s, max_backoff_s=agent.retry.max_backoff_s,
                before_attempt=before, on_attempt=after, validate=validate,
            )  # fmt: skip
    except ProviderError as error:
        if error.code == "missing_key":  # no attempt was made: say why, once
            ledger.call(version_id, slug, model, attempt=1, outcome=CallOutcome.SKIPPED,
                        error=error.message, error_code=error.code)  # fmt: skip
        return None
    finally:
        if held["amount"]:  # an attempt that raised before it was settled
            api.budget_settle(ledger.context, held["amount"], Decimal(0))
    usage = {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens}
    simulated = provider.kind == "simulated"
    return Answer(reply.text, _data(agent, reply), slug, model, usage, simulated)


def _simulated(provider: ProviderSpec, request: Request, before, after, validate) -> Reply:
    before(1)
    started = time.monotonic()
    script = provider.simulated.script if provider.simulated else {}
    latency = provider.simulated.latency_s if provider.simulated else 0
    reply = simulate(request, script=script, latency_s=latency)
    try:
        if validate:
            validate(reply)
    except ProviderError as rejection:
        after(Attempt(1, None, rejection, time.monotonic() - started))
        raise
    after(Attempt(1, reply, None, time.monotonic() - started))
    return reply


def _validator(agent: AgentSpec):
    if agent.output_schema is None:
        return None
    checker = jsonschema.Draft202012Validator(agent.output_schema)

    def validate(reply: Reply) -> None:
        try:
            data = json.loads(_json_text(reply.text))
        except ValueError:
            raise _invalid(reply, "the answer is not JSON") from None
        error = jsonschema.exceptions.best_match(checker.iter_errors(data))
        if error is not None:
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path)
            raise _invalid(reply, f"the answer fails output_schema at data{where}: {error.message}")

    return validate


def _invalid(reply: Reply, message: str) -> ProviderError:
    usage = (reply.input_tokens, reply.output_tokens)
    return ProviderError(message, code="invalid_output", retryable=True, usage=usage)


def _data(agent: AgentSpec, reply: Reply):
    if agent.output_schema is None:
        return None
    return json.loads(_json_text(reply.text))


def _json_text(text: str) -> str:
    """The JSON in an answer, without the Markdown fence models like to put around it."""
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.split("\n", 1)[-1].rsplit("```", 1)[0]
    return stripped
