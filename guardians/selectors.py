"""Reading guardians: their current versions, the chains of composites, and dry runs."""

from django.db.models import F

from guardians.evaluation import Verdict, evaluate
from guardians.models import Guardian, GuardianVersion, Kind


def versions_current(slugs) -> dict[str, GuardianVersion]:
    """The current version of each guardian named (missing slugs are left out), in one query."""
    versions = GuardianVersion.objects.filter(
        guardian__slug__in=list(slugs), guardian__current_version=F("pk")
    ).select_related("guardian")
    return {version.guardian.slug: version for version in versions}


def composite_chains() -> dict[str, list[str]]:
    """Every guardian's slug -> the guardians its current version chains ([] if not a composite)."""
    rows = Guardian.objects.values_list("slug", "current_version__kind", "current_version__config")
    return {
        slug: (config or {}).get("guardians", []) if kind == Kind.COMPOSITE else []
        for slug, kind, config in rows
    }


def guardian_dry_run(*, guardian: Guardian, payload: dict) -> Verdict:
    """What the guardian's current version decides on a sample context; touches no run."""
    version = GuardianVersion.objects.select_related("guardian").get(pk=guardian.current_version_id)
    return evaluate(version, payload)
