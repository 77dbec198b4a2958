"""Domain metrics, exported at /metrics next to django-prometheus' own."""

from prometheus_client import Counter, Histogram

runs_total = Counter(
    "chameleon_runs_total", "Runs that reached a terminal status.", ["workflow", "status"]
)
step_seconds = Histogram(
    "chameleon_step_seconds",
    "Wall time of step executions.",
    ["kind"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)


def run_finished(workflow: str, status: str) -> None:
    runs_total.labels(workflow=workflow, status=status).inc()


def step_observed(kind: str, seconds: float) -> None:
    step_seconds.labels(kind=kind).observe(seconds)
