"""Intervention metrics: how many are open now (counted from the rows at each scrape, so every
process agrees) and how long they took to resolve (observed by the process that resolved)."""

import logging

from prometheus_client import Histogram
from prometheus_client.core import GaugeMetricFamily

logger = logging.getLogger(__name__)
resolve_seconds = Histogram(
    "chameleon_intervention_resolve_seconds",
    "From an intervention's opening to its resolution.",
    ["type"],
    buckets=(1, 5, 15, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 86400, 7 * 86400),
)


def resolved(type_: str, seconds: float) -> None:
    resolve_seconds.labels(type=type_).observe(seconds)


class OpenInterventions:
    """`chameleon_interventions_open{type,priority}`: open and claimed ones, by type and
    priority, counted when scraped."""

    def collect(self):
        from django.db import DatabaseError
        from django.db.models import Count

        from interventions.models import ACTIVE, Intervention, Priority

        family = GaugeMetricFamily(
            "chameleon_interventions_open",
            "Interventions open or claimed, waiting for a person.",
            labels=["type", "priority"],
        )
        rows = Intervention.objects.filter(status__in=ACTIVE).values_list("type", "priority")
        try:
            counts = list(rows.annotate(n=Count("pk")).order_by())
        except DatabaseError:  # the database is away: the scrape goes on without this gauge
            logger.warning("chameleon_interventions_open: the database could not be read")
            return
        for type_, priority, count in counts:
            family.add_metric([type_, Priority(priority).label], count)
        yield family
