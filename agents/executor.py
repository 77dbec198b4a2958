"""The `agent` and `capability` step kinds: `agent: risk-analyst` (or `capability: risk`) renders
the agent's prompt from the step's `with` and answers with
{text, data, provider, model, agent, agent_version, usage, cost_usd, cached, degraded,
simulated}.

Leased (an outside effect), so many wait at once in each worker process's pool of calls. When
the agent's chain is exhausted, its fallback agent is asked; then, with `skip_if_unavailable`,
the step is skipped and the run degraded; otherwise the step fails listing every attempt (and,
with the step's `on_failure: escalate`, the engine holds it for someone to decide).
"""

from __future__ import annotations

import dataclasses

from pydantic import BaseModel, ConfigDict, Field

from agents import cache, catalog
from agents.calling import BudgetExceeded, Ledger, chain_answer
from agents.models import Agent
from agents.specs import SLUG
from workflows.engine import api

MAX_FALLBACKS = 5


class _Fields(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentFields(_Fields):
    agent: str = Field(pattern=SLUG, max_length=100)


class CapabilityFields(_Fields):
    capability: str = Field(pattern=SLUG, max_length=100)


class AgentExecutor:
    kind, fields = "agent", AgentFields

    def validate(self, step, params, path, publishing) -> list[api.SpecError]:
        if publishing is None or Agent.objects.filter(slug=params.agent).exists():
            return []
        return [api.SpecError(f"{path}.agent", f"unknown agent '{params.agent}'")]

    def runs_inline(self, step, params) -> bool:
        return False

    def chosen(self, params) -> catalog.Chosen | None:
        return catalog.agent_current(params.agent)

    def execute(self, context: api.StepContext) -> api.Outcome:
        """The answer, with what every attempt cost, said and recorded (LLMCall rows, saved by
        the engine with the outcome, even a late one)."""
        ledger = Ledger(context)
        try:
            outcome = self._answered(context, ledger)
        except Exception as exc:  # the calls made so far are still recorded and costed
            outcome = api.Fail(f"agent step: {type(exc).__name__}: {exc}", code="error")
        return _with_ledger(outcome, ledger)

    def _answered(self, context, ledger: Ledger) -> api.Outcome:
        first = self.chosen(context.params)
        if first is None:
            return _failed(ledger, f"step '{context.step.id}': {self._missing(context.params)}")
        chosen, tried = first, []
        try:
            while True:
                output = _agent_output(ledger, chosen, context.input)
                tried.append(chosen.spec.slug)
                if output is not None:
                    degraded = len(tried) > 1
                    output |= {"degraded": degraded, "cost_usd": float(ledger.cost)}
                    return api.Done(output, degraded=degraded)
                fallback = chosen.spec.fallback_agent
                if not fallback or fallback in tried or len(tried) > MAX_FALLBACKS:
                    break
                chosen = catalog.agent_current(fallback)
                if chosen is None:
                    break
                ledger.event("llm.fallback", agent=tried[-1], to=fallback)
        except BudgetExceeded as exc:
            return _failed(ledger, str(exc), code="budget_exceeded")
        except api.TemplateError as exc:
            return _failed(ledger, f"agent '{chosen.spec.slug}': {exc}", code="template_error")
        agent, summary = first.spec, _attempts(ledger)
        if agent.skip_if_unavailable:
            return api.Skip(f"agent '{agent.slug}' unavailable: {summary}", degraded=True)
        message = f"agent '{agent.slug}' (tried {', '.join(tried)}) failed: {summary}"
        return _failed(ledger, message, code="agent_unavailable")

    def _missing(self, params) -> str:
        return f"agent '{params.agent}' does not exist, is disabled or has no version"


class CapabilityExecutor(AgentExecutor):
    kind, fields = "capability", CapabilityFields

    def validate(self, step, params, path, publishing) -> list[api.SpecError]:
        return []  # agents come and go; the capability is routed when the step runs

    def chosen(self, params):
        return catalog.agent_for_capability(params.capability)

    def _missing(self, params) -> str:
        return f"no enabled agent with capability '{params.capability}' has a provider available"


def _agent_output(ledger: Ledger, chosen: catalog.Chosen, values: dict) -> dict | None:
    spec = chosen.spec
    system = _text(api.template_render(spec.system, values)) if spec.system else ""
    prompt = _text(api.template_render(spec.prompt, values))
    hit = cache.answer_cached(chosen.version_id, spec, system, prompt)
    if hit is not None:
        ledger.event("llm.cache_hit", agent=spec.slug, agent_version=chosen.number)
        return hit | {"cached": True}
    providers = catalog.providers_of(spec)
    api.connection_release()  # what follows waits on the network
    answer = chain_answer(ledger, chosen.version_id, spec, providers, system, prompt)
    if answer is None:
        return None
    output = {
        "text": answer.text, "data": answer.data, "provider": answer.provider,
        "model": answer.model, "agent": spec.slug, "agent_version": chosen.number,
        "usage": answer.usage, "cached": False, "simulated": answer.simulated,
    }  # fmt: skip
    cache.answer_keep(chosen.version_id, spec, system, prompt, output)
    return output


def _text(value) -> str:
    return value if isinstance(value, str) else str(value)


def _attempts(ledger: Ledger) -> str:
    parts = [
        f"{call.provider}/{call.model}#{call.attempt} {call.error_code or call.outcome}"
        for call in ledger.calls
    ]
    return "; ".join(parts) or "no provider could be tried"


def _failed(ledger: Ledger, message: str, *, code: str = "agent_error") -> api.Fail:
    return api.Fail(message, code=code, retryable=False)


def _with_ledger(outcome: api.Outcome, ledger: Ledger) -> api.Outcome:
    what = {"cost_usd": ledger.cost, "events": tuple(ledger.events), "records": tuple(ledger.calls)}
    if isinstance(outcome, api.Fail):
        vars(outcome).update(what)
        return outcome
    return dataclasses.replace(outcome, **what)
