"""A pilot's answer → the next step starts, measured in one invocation. See bench/README.md.

    .venv/bin/python bench/interventions.py [--resolutions 200]

`--resolutions` runs of `human` approval → `tool: noop` wait on a person; the driver answers each
through the API (POST /api/interventions/{id}/resolve/ with a JWT, Django's test client in this
process: the view, the service and its transaction, no network), one at a time, and waits for
the next step's task to start on the worker (StepRun.started_at, written by the worker when it
claims the step run). Latency: from the API call's return (and from its start) to that start;
p50/p99, target p99 <= 100 ms. One `celery worker --pool prefork --concurrency 2`, as bench/run.py.
"""

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

# Run as a script, this file's folder heads sys.path, and this module's name would shadow the
# `interventions` app: the project's root takes its place (bench.run puts it first anyway).
ROOT = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)

from bench import run  # noqa: E402  (sets the bench environment up and calls django.setup())

# isort: split
import redis  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402
from rest_framework_simplejwt.tokens import RefreshToken  # noqa: E402

from interventions.models import Intervention  # noqa: E402
from workflows.engine import api  # noqa: E402
from workflows.models import StepRun, Workflow  # noqa: E402
from workflows.services import workflow_create, workflow_version_publish  # noqa: E402

SPEC = {
    "slug": "bench-interventions",
    "steps": [
        {"id": "ask", "human": {"type": "approval", "prompt": "Go on?"}},
        {"id": "next", "tool": "noop", "with": {"value": "{{ steps.ask.output.decision }}"}},
    ],
}
TARGET_P99_MS, TIMEOUT_S, POLL_S = 100, 60, 0.001


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resolutions", type=int, default=200)
    args = parser.parse_args()

    run.database_prepare()
    redis.Redis.from_url(run.REDIS_URL).flushdb()
    user = get_user_model().objects.get_or_create(username="bench")[0]
    user.is_superuser = True  # acts on interventions with no group or assignee
    user.save(update_fields=["is_superuser"])
    workflow = workflow_ensure(user)
    environment = argparse.Namespace(workers=1, concurrency=2, repeat=1)
    print(run.environment_line(environment), flush=True)
    workers = run.Workers(1, 2)
    try:
        waiting = runs_waiting(workflow, user, args.resolutions)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
        resolve(client, waiting[0])  # warm-up: the first request loads the URLconf and views
        from_return, from_call = zip(*(resolve(client, item) for item in waiting[1:]), strict=True)
    finally:
        workers.stop()
    report(list(from_return), list(from_call))


def workflow_ensure(user) -> Workflow:
    workflow = Workflow.objects.filter(slug=SPEC["slug"]).first()
    if workflow is None:
        return workflow_create(source=SPEC, created_by=user)
    workflow_version_publish(workflow=workflow, source=SPEC, published_by=user)
    workflow.refresh_from_db()
    return workflow


def runs_waiting(workflow, user, count: int) -> list[tuple[str, str]]:
    """Start `count` + 1 runs and wait until each waits on its intervention: (intervention, run)."""
    runs = [api.run_start(workflow=workflow, inputs={}, started_by=user)[0].pk
            for _ in range(count + 1)]  # fmt: skip
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        opened = dict(Intervention.objects.filter(run_id__in=runs).values_list("run_id", "pk"))
        if len(opened) == len(runs):
            return [(str(opened[run_id]), str(run_id)) for run_id in runs]
        time.sleep(0.05)
    raise SystemExit(f"only {len(opened)} of {len(runs)} runs opened their intervention")


def resolve(client: APIClient, item: tuple[str, str]) -> tuple[float, float]:
    """Answer one intervention; seconds from the call's return and from its start to the moment
    the next step's task started on the worker."""
    intervention_id, run_id = item
    called = time.time()
    response = client.post(f"/api/interventions/{intervention_id}/resolve/",
                           {"decision": "approve"}, format="json")  # fmt: skip
    returned = time.time()
    if response.status_code != 200:
        raise SystemExit(f"resolve answered {response.status_code}: {response.content[:300]}")
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        started = StepRun.objects.filter(run_id=run_id, step_id="next", started_at__isnull=False)
        at = started.values_list("started_at", flat=True).first()
        if at is not None:
            return at.timestamp() - returned, at.timestamp() - called
        time.sleep(POLL_S)
    raise SystemExit(f"the next step of run {run_id} did not start within {TIMEOUT_S}s")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def report(from_return: list[float], from_call: list[float]) -> None:
    print(f"\n{len(from_return)} resolutions, at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    for label, values in (("API call returned", from_return), ("API call made", from_call)):
        ms = [value * 1000 for value in values]
        p50, p99 = statistics.median(ms), percentile(ms, 0.99)
        print(f"  from {label:<18} -> next step started: p50 {p50:7.1f} ms, p99 {p99:7.1f} ms,"
              f" max {max(ms):7.1f} ms")  # fmt: skip
    p99 = percentile([value * 1000 for value in from_return], 0.99)
    verdict = "meets" if p99 <= TARGET_P99_MS else "misses"
    print(
        f"  p99 from the call's return {p99:.1f} ms {verdict} the target of <= {TARGET_P99_MS} ms"
    )


if __name__ == "__main__":
    main()
