"""Guardian metrics, exported at /metrics from web and worker processes alike."""

from prometheus_client import Counter

decisions_total = Counter(
    "chameleon_guardian_decisions_total",
    "Guardian decisions made before steps (dry runs are not counted).",
    ["kind", "outcome"],
)


def decisions_counted(decisions) -> None:
    for decision in decisions:
        decisions_total.labels(kind=decision.guardian_version.kind, outcome=decision.outcome).inc()
