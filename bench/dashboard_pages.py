"""The dashboard's runs list, a run's page and the overview over many runs: server render time.

    .venv/bin/python bench/dashboard_pages.py [--runs 100000] [--resolved 10000] [--renders 20]

Makes `--runs` runs over four workflows (statuses, costs and creation times spread over the last
two days, a tenth of them today) and `--resolved` resolved interventions plus a thousand open
ones (due times spread, some overdue), in bulk. Then renders each page `--renders` times through
Django's test client in this process (middleware, session, view, selectors, template; no
network) for a pilot who may view two of the workflows (django-guardian object permissions) and
for an operator (sees all). Prints median and p99 in ms, and the queries per render.
"""

import argparse
import random
import statistics
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

# Run as a script, this file's folder heads sys.path: the project's root takes its place.
ROOT = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)

from bench import run  # noqa: E402  (sets the bench environment up and calls django.setup())

# isort: split
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402
from guardian.shortcuts import assign_perm  # noqa: E402

from interventions.models import Intervention, Priority, Source  # noqa: E402
from workflows.models import Run, RunEvent, RunStatus, Workflow  # noqa: E402
from workflows.services import workflow_create  # noqa: E402

SLUGS = ("bench-dash-a", "bench-dash-b", "bench-dash-c", "bench-dash-d")
STATUSES = (RunStatus.COMPLETED,) * 6 + (RunStatus.RUNNING, RunStatus.WAITING, RunStatus.FAILED)
WARM_UP, BATCH = 3, 5000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--resolved", type=int, default=10_000)
    parser.add_argument("--renders", type=int, default=20)
    args = parser.parse_args()

    run.database_prepare()  # empties the runs
    Intervention.objects.all().delete()
    operator, pilot, resolvers = users()
    workflows = [workflow_of(slug, operator) for slug in SLUGS]
    for workflow in workflows[:2]:
        assign_perm("view_workflow", pilot, workflow)
    started = time.perf_counter()
    sample = runs_make(workflows, operator, args.runs)
    interventions_make(resolvers, args.resolved)
    print(f"made {args.runs} runs and {args.resolved + 1000} interventions in "
          f"{time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
    pages = {
        "runs list": "/dashboard/runs/",
        "runs list, status=FAILED": "/dashboard/runs/?status=FAILED",
        "run page (40 events)": f"/dashboard/runs/{sample.pk}/",
        "overview": "/dashboard/overview/",
    }
    for label, user in (("pilot (object permissions)", pilot), ("operator", operator)):
        for page, url in pages.items():
            report(f"{page}, {label}", *renders(user, url, args.renders))


def users():
    model = get_user_model()
    operator = model.objects.get_or_create(username="bench-operator")[0]
    operator.groups.add(Group.objects.get(name="operator"))
    pilot = model.objects.get_or_create(username="bench-pilot")[0]
    pilot.groups.add(Group.objects.get(name="pilot"))
    resolvers = [model.objects.get_or_create(username=f"bench-resolver-{i}")[0] for i in range(8)]
    return operator, pilot, resolvers


def workflow_of(slug: str, operator) -> Workflow:
    spec = {"slug": slug, "steps": [{"id": "only", "tool": "noop"}]}
    return Workflow.objects.filter(slug=slug).first() or workflow_create(
        source=spec, created_by=operator
    )


def runs_make(workflows, operator, count: int) -> Run:
    """`count` runs in bulk, spread over the workflows, statuses and the last two days; return
    the newest of the pilot's first workflow, with 40 events."""
    now, rng = timezone.now(), random.Random(7)
    for first in range(0, count, BATCH):
        Run.objects.bulk_create(
            Run(workflow=(workflow := workflows[(first + i) % len(workflows)]),
                version=workflow.current_version, status=rng.choice(STATUSES),
                started_by=operator, progress_done=1, progress_total=1,
                cost_usd=Decimal(rng.randint(0, 5000)) / 10_000)
            for i in range(min(BATCH, count - first))
        )  # fmt: skip
    # Creation times are set by the database on insert: spread them afterwards.
    with connection.cursor() as cursor:
        cursor.execute(
            f'UPDATE "{Run._meta.db_table}" SET created_at = now() - '
            "(random() * interval '48 hours'), started_at = now() - interval '49 hours'"
        )
        cursor.execute(f'ANALYZE "{Run._meta.db_table}"')
    sample = Run.objects.filter(workflow=workflows[0]).order_by("-created_at").first()
    RunEvent.objects.bulk_create(
        RunEvent(run=sample, seq=seq, type="step.queued", payload={"step": "only"}, at=now)
        for seq in range(1, 41)
    )
    Run.objects.filter(pk=sample.pk).update(event_seq=40)
    return sample


def interventions_make(resolvers, resolved: int) -> None:
    now, rng = timezone.now(), random.Random(11)
    run_ids = list(Run.objects.values_list("pk", "workflow__slug")[: resolved + 1000])
    items = []
    for i, (run_id, slug) in enumerate(run_ids):
        opened = now - timedelta(minutes=rng.randint(30, 60 * 24 * 20))
        due = opened + timedelta(minutes=rng.randint(5, 240)) if i % 3 else None
        done = i < resolved
        item = Intervention(
            run_id=run_id, step_run_id=i, step_id="only", workflow=slug, type="approval",
            source=Source.HUMAN, priority=rng.choice(Priority.values), created_at=opened,
            due_at=due, status="RESOLVED" if done else "OPEN",
            resolved_by=rng.choice(resolvers) if done else None,
            resolved_at=opened + timedelta(minutes=rng.randint(1, 300)) if done else None,
        )  # fmt: skip
        item.queue_key = item.queue_key_of()
        items.append(item)
    Intervention.objects.bulk_create(items, batch_size=BATCH)
    with connection.cursor() as cursor:
        cursor.execute(f'ANALYZE "{Intervention._meta.db_table}"')


def renders(user, url: str, count: int) -> tuple[list[float], int]:
    client = Client()
    client.force_login(user)
    for _ in range(WARM_UP):
        client.get(url)
    times = []
    for _ in range(count):
        began = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    with CaptureQueriesContext(connection) as captured:
        client.get(url)
    return times, len(captured)


def report(label: str, times: list[float], queries: int) -> None:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    print(f"{label}: {queries} queries; median {statistics.median(ordered):.1f} ms, "
          f"p99 {p99:.1f} ms over {len(times)} renders")  # fmt: skip


if __name__ == "__main__":
    main()
