"""Engine vs raw Celery on this machine, measured in one invocation. See bench/README.md.

    .venv/bin/python bench/run.py [--repeat 3] [--chain 200] [--fanout 2000] [--profile]
                                  [--leased-runs 100] [--leased-delay 1.0]

(a) a chain of `noop` tool steps (each after the previous) vs a raw Celery chain of tasks that
    each commit one row: mean time per step, engine / raw, target <= 1.5.
(b) independent `noop` steps (all `needs: []`) vs a raw Celery group of tasks that each commit
    one row, on the same workers: steps per second, engine / raw, target >= 0.5.
(c) runs of one `http.get` step against a local server that answers after 1 s, on two worker
    processes (bench/leased.py): wall time of 100 runs, target <= 5 s (the floor is 1 s).
"""

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/chameleon_bench"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/10")
# The driver and the workers share this environment: the bench database and Redis db, no DEBUG
# (DEBUG keeps every SQL statement in memory), quiet logs.
BENCH_ENV = {
    "DJANGO_SETTINGS_MODULE": os.environ.get("BENCH_SETTINGS_MODULE", "config.settings.base"),
    "DATABASE_URL": DATABASE_URL,
    "REDIS_URL": REDIS_URL,
    "CELERY_BROKER_URL": REDIS_URL,
    "DJANGO_DEBUG": "false",
    "LOG_LEVEL": "WARNING",
    "HTTP_TOOLS_ALLOWED_HOSTS": "127.0.0.1",  # (c)'s local server
}
os.environ.update(BENCH_ENV)
sys.path.insert(0, str(ROOT))

import django  # noqa: E402

django.setup()

import psycopg  # noqa: E402
import redis  # noqa: E402
from celery import chain, group  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402
from psycopg import sql  # noqa: E402

from bench import leased  # noqa: E402
from bench.raw_tasks import raw_noop, raw_rows, raw_table_reset  # noqa: E402
from config.celery import app  # noqa: E402
from workflows.engine.runs import run_start  # noqa: E402
from workflows.models import RUN_TERMINAL, Run, RunStatus, Workflow  # noqa: E402
from workflows.services import workflow_create, workflow_version_publish  # noqa: E402

RUN_TIMEOUT_S = 1800
POLL_S = 0.02
KINDS = ("engine_chain", "raw_chain", "engine_fanout", "raw_fanout")
# (c) runs on two worker processes, as its target says: one node, prefork --concurrency 2.
LEASED_WORKERS, LEASED_CONCURRENCY = 1, 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="measurements of each kind")
    parser.add_argument("--chain", type=int, default=200, help="steps in the chain")
    parser.add_argument("--fanout", type=int, default=2000, help="independent steps")
    parser.add_argument("--workers", type=int, default=1, help="celery worker processes")
    parser.add_argument("--concurrency", type=int, default=2, help="prefork children each")
    parser.add_argument(
        "--profile", action="store_true", help="then one probed pass of each kind (bench/probe.py)"
    )
    parser.add_argument(
        "--tool",
        default="noop",
        help="the steps' tool: noop (pure, runs inside the claiming transaction) or "
        "bench.leased_noop (the same no-op run the way every tool with outside effects is: "
        "claimed under a lease, executed, then recorded in a second transaction)",
    )
    parser.add_argument(
        "--leased-runs", type=int, default=100, help="(c): runs of one http.get step; 0 skips (c)"
    )
    parser.add_argument(
        "--leased-delay", type=float, default=1.0, help="(c): seconds the server takes to answer"
    )
    args = parser.parse_args()

    database_prepare()
    user = get_user_model().objects.get_or_create(username="bench")[0]
    chain_wf, fanout_wf, warm_chain, warm_fanout = (
        workflow_ensure(slug, steps, user, independent=independent, tool=args.tool)
        for slug, steps, independent in (
            (f"bench-chain-{args.chain}", args.chain, False),
            (f"bench-fanout-{args.fanout}", args.fanout, True),
            ("bench-chain-warmup", 20, False),
            ("bench-fanout-warmup", 100, True),
        )
    )
    redis.Redis.from_url(REDIS_URL).flushdb()

    print(environment_line(args), flush=True)
    results = {kind: [] for kind in KINDS}
    starts = []  # engine fan-out: seconds until run_start committed, and until it returned
    workers = Workers(args.workers, args.concurrency)
    try:
        print("warming up: a short run of each kind", flush=True)
        engine_seconds(warm_chain, user)
        engine_seconds(warm_fanout, user)
        raw_seconds(raw_chain(20), 20)
        raw_seconds(raw_group(100), 100)
        for attempt in range(1, args.repeat + 1):
            # Interleaved, so drift on the machine touches engine and raw alike.
            results["engine_chain"].append(engine_seconds(chain_wf, user))
            results["raw_chain"].append(raw_seconds(raw_chain(args.chain), args.chain))
            results["engine_fanout"].append(engine_seconds(fanout_wf, user, starts))
            results["raw_fanout"].append(raw_seconds(raw_group(args.fanout), args.fanout))
            figures = ", ".join(f"{kind} {results[kind][-1]:.3f}s" for kind in KINDS)
            print(f"  repeat {attempt}/{args.repeat}: {figures}", flush=True)
    finally:
        workers.stop()
    leased_results = []
    if args.leased_runs:
        print(
            f"(c) leased path: {leased.ROUNDS} rounds of {args.leased_runs} runs of one http.get"
            f" answered after {args.leased_delay:g}s, on {LEASED_WORKERS} celery worker(s), each"
            f" --pool prefork --concurrency {LEASED_CONCURRENCY}",
            flush=True,
        )
        workers = Workers(LEASED_WORKERS, LEASED_CONCURRENCY)
        try:
            db = {**db_params(), "dbname": settings.DATABASES["default"]["NAME"]}
            leased_results = leased.measure(user, args.leased_runs, args.leased_delay, db)
        finally:
            workers.stop()

    report(results, starts, leased_results, args)
    if args.profile:
        profile(chain_wf, fanout_wf, user, args)


# -- setup ---------------------------------------------------------------------------------------


def db_params() -> dict:
    """psycopg.connect's arguments for the bench database's server, but the database name."""
    db = settings.DATABASES["default"]
    params = {"host": db["HOST"], "port": db["PORT"] or 5432, "user": db["USER"]}
    if db["PASSWORD"]:
        params["password"] = db["PASSWORD"]
    return params


def database_prepare() -> None:
    """Create the bench database if missing, migrate it, and empty its runs and raw rows."""
    db = settings.DATABASES["default"]
    with psycopg.connect(dbname="postgres", autocommit=True, **db_params()) as admin:
        exists = "SELECT 1 FROM pg_database WHERE datname = %s"
        if not admin.execute(exists, [db["NAME"]]).fetchone():
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(f'TRUNCATE "{Run._meta.db_table}" CASCADE')
    raw_table_reset()


def workflow_ensure(slug: str, steps: int, user, *, independent: bool, tool: str) -> Workflow:
    """A workflow of `steps` `tool` steps: each after the previous, or all with `needs: []`."""
    slug = f"{slug}-{tool.replace('.', '-').replace('_', '-')}"
    spec = {
        "slug": slug,
        "steps": [
            {"id": f"s{i}", "tool": tool, **({"needs": []} if independent else {})}
            for i in range(steps)
        ],
    }
    workflow = Workflow.objects.filter(slug=slug).first()
    if workflow is None:
        return workflow_create(source=spec, created_by=user)
    workflow_version_publish(workflow=workflow, source=spec, published_by=user)
    workflow.refresh_from_db()
    return workflow


class Workers:
    """`count` celery worker processes (prefork, `concurrency` children each) on the bench env."""

    def __init__(self, count: int, concurrency: int, imports: str = "bench.raw_tasks"):
        self.names = [f"bench{i}" for i in range(count)]
        self.processes = [
            subprocess.Popen(
                [
                    *(sys.executable, "-m", "celery", "-A", "config", "worker"),
                    *("--pool", "prefork", "--concurrency", str(concurrency)),
                    *("--hostname", f"{name}@%h", "--loglevel", "WARNING"),
                    *("--without-mingle", "--without-gossip", "-I", imports),
                ],
                cwd=ROOT,
                env={**os.environ, **BENCH_ENV},
                stdout=subprocess.DEVNULL,  # the banner; warnings and errors still reach stderr
                start_new_session=True,
            )
            for name in self.names
        ]
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            replies = app.control.ping(timeout=0.5) or []
            if {host.split("@")[0] for reply in replies for host in reply} >= set(self.names):
                return
        self.stop()
        raise SystemExit(f"workers {self.names} did not answer a ping within {timeout:.0f}s")

    def stop(self) -> None:
        for process in self.processes:  # to the main process: a warm shutdown of its children
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


# -- measurements --------------------------------------------------------------------------------


def engine_seconds(workflow: Workflow, user, starts: list | None = None) -> float:
    """Start a run; its duration as the engine recorded it (Run.created_at to finished_at)."""
    called, committed = time.monotonic(), []
    with transaction.atomic():
        # The first hook after the commit; the steps' dispatches follow it.
        transaction.on_commit(lambda: committed.append(time.monotonic()))
        run, _ = run_start(workflow=workflow, inputs={}, started_by=user)
    if starts is not None:
        starts.append((committed[0] - called, time.monotonic() - called))
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        status, created_at, finished_at, error = Run.objects.values_list(
            "status", "created_at", "finished_at", "error"
        ).get(pk=run.pk)
        if status in RUN_TERMINAL:
            if status != RunStatus.COMPLETED:
                raise SystemExit(f"run {run.pk} of {workflow.slug} ended {status}: {error}")
            return (finished_at - created_at).total_seconds()
        time.sleep(POLL_S)
    raise SystemExit(f"run {run.pk} of {workflow.slug} still {status} after {RUN_TIMEOUT_S}s")


def raw_chain(n: int):
    return chain(raw_noop.si(i) for i in range(n))


def raw_group(n: int):
    return group(raw_noop.si(i) for i in range(n))


def raw_seconds(signature, n: int) -> float:
    """Send the canvas; seconds from sending it to the commit time of the n-th row."""
    raw_table_reset()
    sent_at = timezone.now()
    signature.apply_async()
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        count, last_at = raw_rows()
        if count >= n:
            return (last_at - sent_at).total_seconds()
        time.sleep(POLL_S)
    raise SystemExit(f"raw tasks: {count} of {n} rows after {RUN_TIMEOUT_S}s")


# -- report --------------------------------------------------------------------------------------


def environment_line(args) -> str:
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"bench: {args.workers} celery worker(s), each --pool prefork --concurrency"
        f" {args.concurrency}; {os.cpu_count()} CPUs, load average {load};"
        f" database {settings.DATABASES['default']['NAME']}, broker {REDIS_URL};"
        f" settings {settings.SETTINGS_MODULE}; median of {args.repeat}"
    )


def report(results: dict, starts: list, leased_results: list, args) -> None:
    median = {kind: statistics.median(values) for kind, values in results.items()}
    chain_ms = [median[kind] / args.chain * 1000 for kind in ("engine_chain", "raw_chain")]
    fanout_rate = [args.fanout / median[kind] for kind in ("engine_fanout", "raw_fanout")]
    rows = [
        (f"(a) chain of {args.chain} {args.tool}: ms/step", *chain_ms, "ms", "<= 1.5", 1.5, -1),
        (
            f"(b) {args.fanout} independent {args.tool}: steps/s",
            *fanout_rate,
            "/s",
            ">= 0.5",
            0.5,
            1,
        ),
    ]
    if leased_results:
        rows.append(leased.report_row(leased_results, args.leased_runs, args.leased_delay))
    header = (
        f"{'measurement':<56} {'engine':>11} {'raw|floor':>11} {'ratio':>7} {'target':>8}  result"
    )
    print(f"\n{header}\n{'-' * len(header)}")
    for name, engine, raw, unit, target, bound, sign in rows:
        ratio = engine / raw
        met = (ratio - bound) * sign >= 0
        print(
            f"{name:<56} {engine:>8.2f} {unit:<2} {raw:>8.2f} {unit:<2} {ratio:>7.2f}"
            f" {target:>8}  {'met' if met else 'MISSED'}"
        )
    print()
    for kind in KINDS:
        print(f"  {kind:<14} seconds: {', '.join(f'{value:.3f}' for value in results[kind])}")
    planned = statistics.median(planned for planned, _ in starts)
    published = statistics.median(published for _, published in starts)
    print(
        f"  engine fan-out: run_start (in this process) planned and committed {args.fanout} steps"
        f" in {planned:.2f}s (the workers idle meanwhile) and published them by {published:.2f}s"
        f" (median; of {median['engine_fanout']:.2f}s)"
    )
    if leased_results:
        print("\n".join(leased.report_lines(leased_results)))
    print(f"  load average now: {', '.join(f'{value:.2f}' for value in os.getloadavg())}")


def profile(chain_wf: Workflow, fanout_wf: Workflow, user, args) -> None:
    """One more pass of each kind on probed workers (bench/probe.py): where a step's time goes."""
    from bench.probe import PROBE_KEY

    client = redis.Redis.from_url(REDIS_URL)
    workers = Workers(args.workers, args.concurrency, imports="bench.raw_tasks,bench.probe")
    try:
        engine_seconds(chain_wf, user)  # warm the probed workers
        passes = (
            ("raw chain", args.chain, lambda: raw_seconds(raw_chain(args.chain), args.chain)),
            ("engine chain", args.chain, lambda: engine_seconds(chain_wf, user)),
            ("raw group", args.fanout, lambda: raw_seconds(raw_group(args.fanout), args.fanout)),
            ("engine fan-out", args.fanout, lambda: engine_seconds(fanout_wf, user)),
        )
        for label, steps, measure in passes:
            probe_settled(client, PROBE_KEY)
            client.delete(PROBE_KEY)
            seconds = measure()
            probe_print(label, steps, seconds, probe_settled(client, PROBE_KEY))
    finally:
        workers.stop()


def probe_settled(client, key: str) -> dict:
    """The probe's sums once no task adds to them any more (a run ends before its last task)."""
    stats = client.hgetall(key)
    while True:
        time.sleep(0.5)
        latest = client.hgetall(key)
        if latest == stats:
            return stats
        stats = latest


def probe_print(label: str, steps: int, seconds: float, stats: dict) -> None:
    stats = {key.decode(): float(value) for key, value in stats.items()}
    per_step_ms = seconds / steps * 1000
    print(f"\nprofile: {label}, {steps} steps in {seconds:.2f}s ({per_step_ms:.2f} ms/step)")
    for task in sorted({key.split("|")[0] for key in stats}):
        per_step = {
            key.split("|")[2]: (stats[key] / steps, stats[key.replace("|n|", "|s|")] / steps)
            for key in stats
            if key.startswith(f"{task}|n|")
        }
        wall_ms = stats[f"{task}|wall"] / steps * 1000
        measured_ms = sum(seconds for _, seconds in per_step.values()) * 1000
        print(
            f"  {task}: {stats[f'{task}|tasks'] / steps:.2f} tasks per step,"
            f" {wall_ms:.2f} ms per step inside them (summed over worker processes):"
        )
        for name, (count, seconds) in sorted(per_step.items(), key=lambda item: -item[1][1]):
            print(f"    {seconds * 1000:8.3f} ms  {count:6.2f} x  {name}")
        print(
            f"    {wall_ms - measured_ms:8.3f} ms            the rest: Python (engine, ORM, Celery)"
        )


if __name__ == "__main__":
    main()
