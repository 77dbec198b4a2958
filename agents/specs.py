"""Provider and agent specs (DESIGN §4): parsed from YAML/JSON, validated whole, every error with
its path (`chain[1].provider`), through the engine's spec machinery."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from workflows.engine import api

SLUG = r"^[a-z0-9][a-z0-9-]*$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
PROVIDER_KINDS = ("anthropic", "openai", "ollama", "simulated")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Price(_Model):
    """USD per million tokens."""

    input: Decimal = Field(ge=0, le=10_000, max_digits=12, decimal_places=6)
    output: Decimal = Field(ge=0, le=10_000, max_digits=12, decimal_places=6)


class BreakerSpec(_Model):
    failures: int = Field(default=5, ge=1, le=1000)
    window_s: float = Field(default=60, gt=0, le=86_400)
    cooldown_s: float = Field(default=30, gt=0, le=86_400)


class SimulatedSpec(_Model):
    """Replies of the offline provider: by model name, `*` for any; else it echoes the prompt."""

    script: dict[str, str] = Field(default_factory=dict)
    latency_s: float = Field(default=0, ge=0, le=60)


class ProviderSpec(_Model):
    slug: str = Field(pattern=SLUG, max_length=100)
    kind: Literal["anthropic", "openai", "ollama", "simulated"]
    name: str = Field(default="", max_length=200)
    base_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$", max_length=500)
    api_key_env: str | None = Field(default=None, pattern=ENV_NAME, max_length=100)
    timeout_s: float = Field(default=30, gt=0, le=600)
    prices: dict[str, Price] = Field(default_factory=dict)
    breaker: BreakerSpec = BreakerSpec()
    simulated: SimulatedSpec | None = None

    @model_validator(mode="after")
    def _endpoint_matches_kind(self):
        if self.kind == "simulated":
            if self.base_url:
                raise ValueError("a simulated provider has no base_url")
            if self.prices:
                raise ValueError("a simulated provider costs nothing: it takes no prices")
        elif not self.base_url:
            raise ValueError(f"a {self.kind} provider needs base_url")
        elif self.simulated is not None:
            raise ValueError("only a simulated provider takes `simulated`")
        return self

    def price(self, model: str) -> Price | None:
        return self.prices.get(model)


class ChainLink(_Model):
    provider: str = Field(pattern=SLUG, max_length=100)
    model: str = Field(min_length=1, max_length=200)


class RetryPolicy(_Model):
    """Per provider in the chain."""

    max_attempts: int = Field(default=3, ge=1, le=10)
    backoff_s: float = Field(default=0.5, ge=0, le=60)
    max_backoff_s: float = Field(default=20, ge=0, le=600)


class AgentSpec(_Model):
    slug: str = Field(pattern=SLUG, max_length=100)
    name: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=2000)
    capabilities: list[Annotated[str, Field(pattern=SLUG, max_length=100)]] = Field(
        default_factory=list, max_length=50
    )
    system: str = Field(default="", max_length=20_000)
    prompt: str = Field(min_length=1, max_length=50_000)
    chain: list[ChainLink] = Field(min_length=1, max_length=10)
    max_tokens: int = Field(default=1024, ge=1, le=200_000)
    retry: RetryPolicy = RetryPolicy()
    criticality: Literal["critical", "high", "medium", "low"] = "medium"
    fallback_agent: str | None = Field(default=None, pattern=SLUG, max_length=100)
    skip_if_unavailable: bool = False
    cache_ttl_s: int = Field(default=0, ge=0, le=30 * 86_400)
    output_schema: dict[str, Any] | None = None


def provider_parse(source: str | dict) -> tuple[ProviderSpec, dict]:
    """(spec, canonical dict) or InvalidInput naming every error's path."""
    return _parsed(ProviderSpec, source, _provider_errors)


def agent_parse(source: str | dict, *, providers: set[str], agents: set[str]):
    """(spec, canonical dict) or InvalidInput naming every error's path; `providers` and `agents`
    are the slugs that exist (the chain and the fallback must name them)."""
    return _parsed(AgentSpec, source, lambda spec: _agent_errors(spec, providers, agents))


def _parsed(model: type[BaseModel], source, semantic_errors):
    data = api.spec_load_text(source)
    try:
        spec = model.model_validate(data)
    except ValidationError as exc:
        errors = [api.spec_error_from_pydantic(error) for error in exc.errors()]
        raise api.spec_invalid(list(dict.fromkeys(errors))) from None
    errors = semantic_errors(spec)
    if errors:
        raise api.spec_invalid(errors)
    return spec, spec.model_dump(mode="json", exclude_defaults=True)


def _provider_errors(spec: ProviderSpec) -> list[api.SpecError]:
    return [
        api.SpecError(f"simulated.script.{model}", "must not be empty")
        for model, reply in (spec.simulated.script.items() if spec.simulated else ())
        if not reply
    ]


def _agent_errors(spec: AgentSpec, providers: set[str], agents: set[str]) -> list[api.SpecError]:
    errors = []
    for field in ("system", "prompt"):
        try:
            api.template_check(getattr(spec, field))
        except api.TemplateError as exc:
            errors.append(api.SpecError(field, str(exc)))
    for index, link in enumerate(spec.chain):
        if link.provider not in providers:
            errors.append(
                api.SpecError(f"chain[{index}].provider", f"unknown provider '{link.provider}'")
            )
    if spec.fallback_agent == spec.slug:
        errors.append(api.SpecError("fallback_agent", "an agent cannot fall back to itself"))
    elif spec.fallback_agent and spec.fallback_agent not in agents:
        errors.append(api.SpecError("fallback_agent", f"unknown agent '{spec.fallback_agent}'"))
    if spec.output_schema is not None:
        try:
            jsonschema.Draft202012Validator.check_schema(spec.output_schema)
        except jsonschema.SchemaError as exc:
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in exc.path)
            errors.append(api.SpecError(f"output_schema{where}", exc.message[:300]))
    return errors
