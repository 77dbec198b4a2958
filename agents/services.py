"""Writing provider and agent definitions: validated whole first, saved in one transaction, so an
invalid spec changes nothing."""

from django.db import IntegrityError, transaction

from accounts.audit import audit_record
from agents import breaker
from agents.catalog import catalog_forget
from agents.models import Agent, AgentVersion, Provider
from agents.specs import agent_parse, provider_parse
from workflows.engine import api


def provider_save(*, source, by=None, slug: str | None = None) -> tuple[Provider, bool]:
    """Create the provider the spec names, or edit it in place; return (provider, created).
    With `slug` (an edit through its own URL) the spec must name that provider."""
    spec, canonical = provider_parse(source)
    if slug is not None and spec.slug != slug:
        raise api.spec_invalid([api.SpecError("slug", f"must stay '{slug}'")])
    with transaction.atomic():
        provider, created = Provider.objects.select_for_update().get_or_create(
            slug=spec.slug, defaults={"kind": spec.kind, "spec": canonical, "created_by": by}
        )
        before = None if created else provider.spec
        if not created and provider.spec != canonical:
            provider.kind, provider.spec = spec.kind, canonical
            provider.save(update_fields=["kind", "spec", "updated_at"])
        if before != canonical:
            audit_record(actor=by, action="provider.publish", obj=provider, before=before,
                         after=canonical)  # fmt: skip
    catalog_forget()
    return provider, created


def agent_create(*, source, by=None) -> Agent:
    """Version 1 of a new agent; Conflict when the slug is taken."""
    spec, canonical = _agent_parsed(source)
    conflict = api.Conflict(f"An agent '{spec.slug}' already exists.", code="exists",
                            details={"slug": "already exists"})  # fmt: skip
    with transaction.atomic():
        if Agent.objects.filter(slug=spec.slug).exists():
            raise conflict
        try:
            with transaction.atomic():
                agent = Agent.objects.create(slug=spec.slug, created_by=by)
        except IntegrityError:  # created meanwhile
            raise conflict from None
        _publish(agent, spec, canonical, by)
    return agent


def agent_version_publish(*, agent: Agent, source, by=None) -> AgentVersion:
    """The next version of the agent (the current one when the spec is unchanged)."""
    spec, canonical = _agent_parsed(source)
    if spec.slug != agent.slug:
        raise api.spec_invalid([api.SpecError("slug", f"must stay '{agent.slug}'")])
    with transaction.atomic():
        agent = Agent.objects.select_for_update().get(pk=agent.pk)
        current = agent.current_version
        if current is not None and current.checksum == api.spec_checksum(canonical):
            return current
        return _publish(agent, spec, canonical, by)


def _agent_parsed(source):
    providers = set(Provider.objects.values_list("slug", flat=True))
    agents = set(Agent.objects.values_list("slug", flat=True))
    return agent_parse(source, providers=providers, agents=agents)


def _publish(agent: Agent, spec, canonical: dict, by) -> AgentVersion:
    number = (agent.current_version.number if agent.current_version else 0) + 1
    checksum = api.spec_checksum(canonical)
    version = AgentVersion.objects.create(
        agent=agent, number=number, spec=canonical, checksum=checksum, published_by=by
    )
    agent.current_version, agent.capabilities = version, list(spec.capabilities)
    agent.save(update_fields=["current_version", "capabilities", "updated_at"])
    audit_record(actor=by, action="agent.publish", obj=agent,
                 before={"version": number - 1} if number > 1 else None,
                 after={"version": number, "checksum": checksum})  # fmt: skip
    catalog_forget()
    return version


@transaction.atomic
def agents_enable(agents, *, enabled: bool, by=None) -> int:
    """Enable or disable agents (a queryset); how many changed."""
    changing = list(agents.exclude(enabled=enabled).select_for_update())
    Agent.objects.filter(pk__in=[agent.pk for agent in changing]).update(enabled=enabled)
    for agent in changing:
        audit_record(actor=by, action="agent.enable" if enabled else "agent.disable", obj=agent,
                     before={"enabled": not enabled}, after={"enabled": enabled})  # fmt: skip
    catalog_forget()
    return len(changing)


@transaction.atomic
def provider_breaker_reset(*, provider: Provider, by=None) -> None:
    """Close the provider's breaker (its state is in Redis; the entry is the record of it)."""
    state = breaker.provider_breaker(provider)
    audit_record(actor=by, action="provider.breaker_reset", obj=provider,
                 before={"state": state.state, "failures": state.failures},
                 after={"state": breaker.CLOSED})  # fmt: skip
    breaker.breaker_reset(provider.slug)
