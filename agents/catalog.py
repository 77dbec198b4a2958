"""Reading definitions for a call: an agent's current version (or the agents a capability routes
to) and the providers of its chain.

Each process keeps what it read for CATALOG_TTL_S, so an agent step touches no database before
its call (and holds no connection while it waits): a new version, a disabled agent or an edited
provider reaches other worker processes within that time, and this process at once (the
services forget what it kept). Versions are immutable, so each is parsed once.
"""

import time
from typing import NamedTuple

from agents import breaker
from agents.models import Agent, AgentVersion, Provider
from agents.specs import AgentSpec, ProviderSpec

CATALOG_TTL_S = 2.0
_parsed: dict[int, AgentSpec] = {}
_kept: dict[tuple, tuple[float, object]] = {}


class Chosen(NamedTuple):
    version_id: int
    number: int
    spec: AgentSpec


def agent_current(slug: str) -> Chosen | None:
    """The agent's current version; None if it is missing, disabled or has none."""

    def read():
        agents = Agent.objects.filter(slug=slug, enabled=True).select_related("current_version")
        agent = agents.first()
        return _chosen(agent.current_version) if agent and agent.current_version else None

    return _recent(("agent", slug), read)


def agent_for_capability(capability: str) -> Chosen | None:
    """The first enabled agent (by slug) with the capability whose chain is not all open."""

    def read():
        agents = Agent.objects.filter(enabled=True).exclude(current_version=None)
        return [
            _chosen(agent.current_version)
            for agent in agents.select_related("current_version").order_by("slug")
            if capability in agent.capabilities
        ]

    for chosen in _recent(("capability", capability), read):
        chain = providers_of(chosen.spec)
        if any(
            link.provider in chain
            and breaker.breaker_state(link.provider, chain[link.provider].breaker).state
            != breaker.OPEN
            for link in chosen.spec.chain
        ):
            return chosen
    return None


def providers_of(spec: AgentSpec) -> dict[str, ProviderSpec]:
    slugs = frozenset(link.provider for link in spec.chain)

    def read():
        return {
            provider.slug: ProviderSpec.model_validate(provider.spec)
            for provider in Provider.objects.filter(slug__in=slugs)
        }

    return _recent(("providers", slugs), read)


def catalog_forget() -> None:
    """Read definitions afresh (this process changed one)."""
    _kept.clear()


def _recent(key: tuple, read):
    now = time.monotonic()
    kept = _kept.get(key)
    if kept is not None and kept[0] > now:
        return kept[1]
    value = read()
    _kept[key] = (now + CATALOG_TTL_S, value)
    return value


def _chosen(version: AgentVersion) -> Chosen:
    spec = _parsed.get(version.pk)
    if spec is None:
        spec = _parsed[version.pk] = AgentSpec.model_validate(version.spec)
    return Chosen(version.pk, version.number, spec)
