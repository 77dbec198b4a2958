"""Guardian definitions from files: `load_workflows DIR` loads DIR/guardians (each composite
after the guardians it chains) before the workflows that guard their steps with them."""

from pathlib import Path

from config.errors import ChameleonError, error_lines
from guardians.models import Guardian
from guardians.services import guardian_create, guardian_version_publish
from workflows.engine import api


def guardians_load_dir(*, directory: Path, owner, missing_only=False) -> list[api.LoadResult]:
    return [
        _loaded(path, owner, missing_only)
        for path in api.definition_files_ordered(directory, _members)
    ]


def _loaded(path: Path, owner, missing_only: bool) -> api.LoadResult:
    try:
        source = path.read_text(encoding="utf-8")
        slug = _slug_of(api.spec_load_text(source))
        guardian = Guardian.objects.filter(slug=slug).select_related("current_version").first()
        if guardian is None:
            guardian = guardian_create(source=source, by=owner)
            return api.LoadResult(path, "created", slug=slug, version=1)
        if missing_only:
            return api.LoadResult(path, "kept", slug=slug, version=guardian.current_version.number)
        previous = guardian.current_version_id
        version = guardian_version_publish(guardian=guardian, source=source, by=owner)
        outcome = "published" if version.pk != previous else "unchanged"
        return api.LoadResult(path, outcome, slug=slug, version=version.number)
    except ChameleonError as exc:
        return api.LoadResult(path, "failed", errors=error_lines(exc))
    except (OSError, UnicodeDecodeError) as exc:
        return api.LoadResult(path, "failed", errors=[f"cannot read: {exc}"])


def _members(data: dict) -> list:
    """The guardians a composite chains (they load first)."""
    config = data.get("config")
    members = config.get("guardians") if isinstance(config, dict) else None
    return members if isinstance(members, list) else []


def _slug_of(data: dict) -> str:
    slug = data.get("slug")
    return slug if isinstance(slug, str) else ""
