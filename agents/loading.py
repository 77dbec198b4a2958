"""Provider and agent definitions from files: `load_workflows DIR` loads DIR/providers and then
DIR/agents (each agent after the agent it falls back to), before the workflows that use them."""

from pathlib import Path

from agents.models import Agent, Provider
from agents.services import agent_create, agent_version_publish, provider_save
from config.errors import ChameleonError, error_lines
from workflows.engine import api


def providers_load_dir(*, directory: Path, owner, missing_only=False) -> list[api.LoadResult]:
    return [
        _loaded(path, missing_only, _provider_load, owner)
        for path in api.definition_files_ordered(directory, _nothing)
    ]


def agents_load_dir(*, directory: Path, owner, missing_only=False) -> list[api.LoadResult]:
    return [
        _loaded(path, missing_only, _agent_load, owner)
        for path in api.definition_files_ordered(directory, _fallback)
    ]


def _loaded(path: Path, missing_only: bool, load, owner) -> api.LoadResult:
    try:
        source = path.read_text(encoding="utf-8")
        return load(path, source, owner, missing_only)
    except ChameleonError as exc:
        return api.LoadResult(path, "failed", errors=error_lines(exc))
    except (OSError, UnicodeDecodeError) as exc:
        return api.LoadResult(path, "failed", errors=[f"cannot read: {exc}"])


def _provider_load(path, source, owner, missing_only) -> api.LoadResult:
    slug = _slug_of(api.spec_load_text(source))
    if missing_only and Provider.objects.filter(slug=slug).exists():
        return api.LoadResult(path, "kept", slug=slug)
    before = Provider.objects.filter(slug=slug).values_list("spec", flat=True).first()
    provider, created = provider_save(source=source, by=owner)
    outcome = "created" if created else ("unchanged" if before == provider.spec else "published")
    return api.LoadResult(path, outcome, slug=provider.slug)


def _agent_load(path, source, owner, missing_only) -> api.LoadResult:
    slug = _slug_of(api.spec_load_text(source))
    agent = Agent.objects.filter(slug=slug).select_related("current_version").first()
    if agent is None:
        agent = agent_create(source=source, by=owner)
        return api.LoadResult(path, "created", slug=slug, version=agent.current_version.number)
    if missing_only:
        return api.LoadResult(path, "kept", slug=slug, version=agent.current_version.number)
    previous = agent.current_version_id
    version = agent_version_publish(agent=agent, source=source, by=owner)
    outcome = "published" if version.pk != previous else "unchanged"
    return api.LoadResult(path, outcome, slug=slug, version=version.number)


def _slug_of(data: dict) -> str:
    slug = data.get("slug")
    return slug if isinstance(slug, str) else ""


def _nothing(data: dict) -> list:
    return []


def _fallback(data: dict) -> list:
    return [data.get("fallback_agent")]
