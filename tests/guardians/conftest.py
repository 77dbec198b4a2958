import pytest

from guardians.models import GuardianVersion
from guardians.services import guardian_create, guardian_version_publish


@pytest.fixture
def guardian(operator):
    """Create a guardian from (slug, kind, config, **fields); return its current version."""

    def make(slug: str, kind: str, config=None, **fields) -> GuardianVersion:
        spec = {"slug": slug, "kind": kind, "config": config or {}, **fields}
        created = guardian_create(source=spec, by=operator)
        return GuardianVersion.objects.select_related("guardian").get(pk=created.current_version_id)

    return make


@pytest.fixture
def republish(operator):
    def publish(version: GuardianVersion, **changes) -> GuardianVersion:
        spec = {**version.spec, **changes}
        published = guardian_version_publish(guardian=version.guardian, source=spec, by=operator)
        return GuardianVersion.objects.select_related("guardian").get(pk=published.pk)

    return publish
