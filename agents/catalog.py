"""Reading definitions for a call: an agent's current version (or the agent a capability routes
to) and the providers of its chain. Versions are immutable, so each process parses one once."""

from typing import NamedTuple

from agents import breaker
from agents.models import Agent, AgentVersion, Provider
from agents.specs import AgentSpec, ProviderSpec

_parsed: dict[int, AgentSpec] = {}


class Chosen(NamedTuple):
    version_id: int
    number: int
    spec: AgentSpec


def agent_current(slug: str) -> Chosen | None:
    """The agent's current version; None if it is missing, disabled or has none."""
    agent = Agent.objects.filter(slug=slug, enabled=True).select_related("current_version").first()
    if agent is None or agent.current_version is None:
        return None
    return _chosen(agent.current_version)


def agent_for_capability(capability: str) -> Chosen | None:
    """The first enabled agent (by slug) with the capability whose chain is not all open."""
    agents = (
        Agent.objects.filter(enabled=True, capabilities__contains=[capability])
        .exclude(current_version=None)
        .select_related("current_version")
    )
    for agent in agents:
        spec = _spec(agent.current_version)
        chain = providers_of(spec)
        if any(
            link.provider in chain
            and breaker.breaker_state(link.provider, chain[link.provider].breaker).state
            != breaker.OPEN
            for link in spec.chain
        ):
            return _chosen(agent.current_version)
    return None


def providers_of(spec: AgentSpec) -> dict[str, ProviderSpec]:
    slugs = {link.provider for link in spec.chain}
    return {
        provider.slug: ProviderSpec.model_validate(provider.spec)
        for provider in Provider.objects.filter(slug__in=slugs)
    }


def _chosen(version: AgentVersion) -> Chosen:
    return Chosen(version.pk, version.number, _spec(version))


def _spec(version: AgentVersion) -> AgentSpec:
    spec = _parsed.get(version.pk)
    if spec is None:
        spec = _parsed[version.pk] = AgentSpec.model_validate(version.spec)
    return spec
