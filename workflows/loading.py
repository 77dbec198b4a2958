"""Load workflow definitions from spec files (`manage.py load_workflows`, the first-run setup).

Each file creates its workflow or publishes the next version when its spec changed; an unchanged
spec is a no-op. Files are loaded so that a sub-workflow comes before the workflows that call it.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from guardian.shortcuts import assign_perm

from accounts.roles import PILOT, SERVICE, VIEWER
from config.errors import ChameleonError, error_lines
from workflows.models import Workflow
from workflows.services import workflow_create, workflow_version_publish
from workflows.spec import spec_load_text

SPEC_SUFFIXES = (".yaml", ".yml", ".json")
# What each role may do with the workflows shipped as files (creators get everything anyway).
ROLE_GRANTS = {
    PILOT: ("view_workflow",),
    VIEWER: ("view_workflow",),
    SERVICE: ("view_workflow", "run_workflow"),
}
SYSTEM_USERNAME = "system"


@dataclass(frozen=True)
class LoadResult:
    path: Path
    outcome: str  # created | published | unchanged | kept | failed
    slug: str = ""
    version: int | None = None
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.outcome != "failed"


def default_owner():
    """The first superuser, else a `system` user that cannot log in (created once)."""
    user_model = get_user_model()
    superuser = user_model.objects.filter(is_superuser=True, is_active=True).order_by("pk").first()
    if superuser is not None:
        return superuser
    system = user_model.objects.filter(username=SYSTEM_USERNAME).first()
    return system or user_model.objects.create_user(SYSTEM_USERNAME)  # unusable password


def workflows_load_dir(*, directory: Path, owner, missing_only=False) -> list[LoadResult]:
    """Load every spec file in `directory`, sub-workflows first; one result per file.
    `missing_only`: create the workflows that do not exist, leave the others as they are."""
    return [
        workflow_load_file(path=path, owner=owner, missing_only=missing_only)
        for path in spec_files_ordered(directory)
    ]


def workflow_load_file(*, path: Path, owner, missing_only=False) -> LoadResult:
    """Create the file's workflow, or publish its spec as the next version if it changed."""
    try:
        source = path.read_text(encoding="utf-8")
        slug = _slug_of(spec_load_text(source))
        workflow = Workflow.objects.filter(slug=slug).first() if slug else None
        if workflow is None:
            workflow = workflow_create(source=source, created_by=owner)
            outcome, version = "created", workflow.current_version
        elif missing_only:
            return LoadResult(path, "kept", slug=slug, version=workflow.current_version.number)
        else:
            previous = workflow.current_version_id
            version = workflow_version_publish(workflow=workflow, source=source, published_by=owner)
            outcome = "published" if version.pk != previous else "unchanged"
    except ChameleonError as exc:
        return LoadResult(path, "failed", errors=error_lines(exc))
    except (OSError, UnicodeDecodeError) as exc:
        return LoadResult(path, "failed", errors=[f"cannot read: {exc}"])
    workflow_grant_roles(workflow=workflow)
    return LoadResult(path, outcome, slug=workflow.slug, version=version.number)


def workflow_grant_roles(*, workflow: Workflow) -> None:
    """Give the role groups their standing rights on the workflow (idempotent)."""
    for group in Group.objects.filter(name__in=ROLE_GRANTS):
        for permission in ROLE_GRANTS[group.name]:
            assign_perm(permission, group, workflow)


def spec_files_ordered(directory: Path) -> list[Path]:
    """Workflow spec files by name, each after the files defining the workflows it calls."""
    return definition_files_ordered(directory, _workflows_called)


def definition_files_ordered(directory: Path, needs: Callable[[dict], list]) -> list[Path]:
    """The spec files of `directory` by name, each moved after the files that define the slugs
    `needs(spec)` names (sub-workflows, fallback agents, a composite's guardians). Files that
    cannot be read stay in place (loading them reports why); in a cycle, name order stays
    (validation names the cycle)."""
    files = sorted(
        path
        for path in Path(directory).iterdir()
        if path.suffix in SPEC_SUFFIXES and path.is_file()
    )
    defined, needed = {}, {}
    for path in files:
        try:
            data = spec_load_text(path.read_text(encoding="utf-8"))
        except (ChameleonError, OSError, UnicodeDecodeError):
            continue
        defined.setdefault(_slug_of(data), path)
        needed[path] = [slug for slug in needs(data) if isinstance(slug, str)]
    graph = {
        path: [defined[slug] for slug in needed.get(path, ()) if defined.get(slug, path) != path]
        for path in files
    }
    try:
        return list(TopologicalSorter(graph).static_order())
    except CycleError:
        return files


def _workflows_called(data: dict) -> list:
    steps = data.get("steps")
    steps = steps if isinstance(steps, list) else []
    return [step.get("workflow") for step in steps if isinstance(step, dict)]


def _slug_of(data: dict) -> str:
    slug = data.get("slug")
    return slug if isinstance(slug, str) else ""
