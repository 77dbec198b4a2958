"""The dashboard's queue page with 10,000 open interventions: its server render time.

    .venv/bin/python bench/queue_page.py [--open 10000] [--renders 20]

Makes `--open` waiting runs of one workflow, each with one open approval for the group `legal`
(bulk INSERTs, priorities and due times spread), then renders GET /dashboard/ `--renders` times
through Django's test client in this process (middleware, session, view, selectors, template;
no network) for a pilot of that group who may view the workflow (visibility through
django-guardian, actionability through the group) and for an operator (sees all). Prints the
median and p99 in ms against the target (<= 200 ms), the queries per render, and the rows shown.
"""

import argparse
import random
import statistics
import sys
import time
from datetime import timedelta
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
from workflows.models import Run, RunStatus, StepRun, Workflow  # noqa: E402
from workflows.services import workflow_create  # noqa: E402

SPEC = {
    "slug": "bench-queue",
    "steps": [{"id": "ask", "human": {"type": "approval", "prompt": "Go on?", "group": "legal"}}],
}
TARGET_MS, WARM_UP, BATCH = 200, 3, 2000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--open", type=int, default=10_000)
    parser.add_argument("--renders", type=int, default=20)
    args = parser.parse_args()

    run.database_prepare()  # empties the runs (and so their interventions' runs)
    Intervention.objects.all().delete()
    operator, pilot = users()
    workflow = Workflow.objects.filter(slug=SPEC["slug"]).first() or workflow_create(
        source=SPEC, created_by=operator
    )
    assign_perm("view_workflow", pilot, workflow)
    started = time.perf_counter()
    interventions_open(workflow, operator, args.open)
    print(f"made {args.open} waiting runs and open interventions in "
          f"{time.perf_counter() - started:.1f} s", flush=True)  # fmt: skip
    for label, user in (("pilot (group + object permission)", pilot), ("operator", operator)):
        report(label, *renders(user, args.renders), args)


def users():
    model = get_user_model()
    legal = Group.objects.get_or_create(name="legal")[0]
    operator = model.objects.get_or_create(username="bench-operator")[0]
    operator.groups.add(Group.objects.get(name="operator"))
    pilot = model.objects.get_or_create(username="bench-pilot")[0]
    pilot.groups.add(Group.objects.get(name="pilot"), legal)
    return operator, pilot


def interventions_open(workflow: Workflow, operator, count: int) -> None:
    """`count` WAITING runs with one open approval each, as the engine leaves them (the step
    runs too, since an intervention names its step run), made in bulk."""
    legal, now, rng = Group.objects.get(name="legal"), timezone.now(), random.Random(7)
    version = workflow.current_version
    for first in range(0, count, BATCH):
        size = min(BATCH, count - first)
        runs = Run.objects.bulk_create(
            Run(workflow=workflow, version=version, status=RunStatus.WAITING, started_by=operator,
                started_at=now, inputs={"n": first + i}) for i in range(size)
        )  # fmt: skip
        items = []
        for i, one in enumerate(runs):
            due = now + timedelta(minutes=rng.randint(-120, 600)) if i % 4 else None
            item = Intervention(
                run_id=one.pk, step_run_id=first + i, step_id="ask", workflow=workflow.slug,
                type="approval", source=Source.HUMAN, group=legal, due_at=due,
                priority=rng.choice(Priority.values), prompt=f"Go on with run {first + i}?",
                created_at=now - timedelta(seconds=first + i),
            )  # fmt: skip
            item.queue_key = item.queue_key_of()
            items.append(item)
        Intervention.objects.bulk_create(items)
    assert not StepRun.objects.exists()  # step_run_id is a value; the page never reads it
    with connection.cursor() as cursor:  # as autovacuum would after such an insert
        cursor.execute(f'ANALYZE "{Run._meta.db_table}", "{Intervention._meta.db_table}"')


def renders(user, count: int) -> tuple[list[float], int, int]:
    client = Client()
    client.force_login(user)
    for _ in range(WARM_UP):
        client.get("/dashboard/")
    times = []
    for _ in range(count):
        began = time.perf_counter()
        response = client.get("/dashboard/")
        times.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200
    with CaptureQueriesContext(connection) as captured:
        body = client.get("/dashboard/").content.decode()
    return times, len(captured), body.count('data-testid="queue-row"')


def report(label: str, times: list[float], queries: int, rows: int, args) -> None:
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    median = statistics.median(ordered)
    verdict = "MET" if p99 <= TARGET_MS else "MISSED"
    print(f"queue page, {label}: {args.open} open, {rows} rows shown, {queries} queries; "
          f"median {median:.1f} ms, p99 {p99:.1f} ms over {len(times)} renders "
          f"(target <= {TARGET_MS} ms: {verdict}, p99/target {p99 / TARGET_MS:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
