"""Reading guardians: their current versions, the chains of composites, dry runs, and a run's
decisions."""

from django.db.models import Count, F

from guardians.evaluation import Verdict, evaluate
from guardians.models import Guardian, GuardianDecision, GuardianVersion, Kind

PANEL_DECISIONS = 100  # the run page shows a run's latest decisions; the API pages through all


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


def decisions_of_run(run_id):
    """Every guardian decision taken before the run's steps, oldest first."""
    decisions = GuardianDecision.objects.filter(run_id=run_id)
    return decisions.select_related("guardian_version__guardian").order_by("at", "id")


def decisions_panel(run, user) -> dict:
    """The run's latest decisions (oldest of them first) and how many it has of each outcome."""
    decisions = decisions_of_run(run.pk)
    counts = dict(decisions.values_list("outcome").annotate(n=Count("id")).order_by())
    latest = list(decisions.order_by("-at", "-id")[:PANEL_DECISIONS])[::-1]
    return {"decisions": latest, "counts": counts, "hidden": sum(counts.values()) - len(latest)}
