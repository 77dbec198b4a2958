"""(c) The leased path: N runs of one `http.get` step, each a call to a local server that answers
after a fixed delay, on two worker processes. See bench/README.md.

Target: 100 runs of one 1 s call finish in <= 5 s; the floor (every call in flight at once) is 1 s.
"""

import json
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
from django.db import transaction
from django.utils import timezone

from workflows.engine.runs import run_start
from workflows.models import RUN_TERMINAL, Run, RunStatus, Workflow
from workflows.services import workflow_create, workflow_version_publish

SLUG = "bench-leased-call"
ROUNDS = 3
WARMUP_RUNS = 4
POLL_S = 0.02
RUN_TIMEOUT_S = 1800
TARGET_RATIO = 5  # 100 runs of a 1 s call in <= 5 s


class SlowServer(ThreadingHTTPServer):
    """Answers every GET after `delay` seconds with a small JSON body; counts calls in flight."""

    daemon_threads = True
    request_queue_size = 1024  # the listen backlog (5 by default): every call may connect at once

    def __init__(self, delay: float):
        super().__init__(("127.0.0.1", 0), _SlowHandler)
        self.delay = delay
        self.lock = threading.Lock()
        self.in_flight = self.peak = self.served = 0
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def reset(self) -> None:
        with self.lock:
            self.peak, self.served = self.in_flight, 0

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _SlowHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        server = self.server
        with server.lock:
            server.in_flight += 1
            server.peak = max(server.peak, server.in_flight)
        try:
            time.sleep(server.delay)
            body = json.dumps({"ok": True, "path": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        finally:
            with server.lock:
                server.in_flight -= 1
                server.served += 1

    def log_message(self, format, *args):  # not a line on stderr per call
        pass


class ConnectionPeak:
    """Polls the number of connections to `dbname` every 20 ms and keeps the peak; its own
    connection is not counted."""

    QUERY = "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()"

    def __init__(self, db: dict):
        self.connection = psycopg.connect(autocommit=True, **db)
        self.dbname, self.peak = db["dbname"], 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        while True:
            (count,) = self.connection.execute(self.QUERY, [self.dbname]).fetchone()
            self.peak = max(self.peak, count)
            if self.stopped.wait(POLL_S):
                return

    def close(self) -> int:
        self.stopped.set()
        self.thread.join()
        self.connection.close()
        return self.peak


def workflow_ensure(user, url: str) -> Workflow:
    spec = {
        "slug": SLUG,
        "steps": [{"id": "call", "tool": "http.get", "with": {"url": url}, "timeout_s": 30}],
    }
    workflow = Workflow.objects.filter(slug=SLUG).first()
    if workflow is None:
        return workflow_create(source=spec, created_by=user)
    workflow_version_publish(workflow=workflow, source=spec, published_by=user)  # the port moves
    workflow.refresh_from_db()
    return workflow


def leased_round(workflow: Workflow, user, runs: int, server: SlowServer, db: dict) -> dict:
    """Start `runs` runs as fast as possible, wait for all to end; wall time to the last one.

    `db`: psycopg.connect's arguments for the bench database, for the connection count."""
    server.reset()
    connections = ConnectionPeak(db)
    try:
        started_at, ids = timezone.now(), []
        for _ in range(runs):
            with transaction.atomic():
                ids.append(run_start(workflow=workflow, inputs={}, started_by=user)[0].pk)
        start_s = (timezone.now() - started_at).total_seconds()
        pending = Run.objects.filter(pk__in=ids).exclude(status__in=RUN_TERMINAL)
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while pending.exists():
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"(c): {pending.count()} of {runs} runs still going after {RUN_TIMEOUT_S}s"
                )
            time.sleep(POLL_S)
    finally:
        peak_connections = connections.close()
    ended = list(Run.objects.filter(pk__in=ids).values_list("status", "finished_at", "error"))
    errors = [error for status, _, error in ended if status != RunStatus.COMPLETED]
    return {
        "wall": (max(at for _, at, _ in ended if at) - started_at).total_seconds(),
        "start": start_s,
        "completed": runs - len(errors),
        "failed": len(errors),
        "error": errors[0] if errors else None,
        "in_flight": server.peak,
        "calls": server.served,
        "connections": peak_connections,
    }


def measure(user, runs: int, delay: float, db: dict) -> list[dict]:
    """A warm-up round of a few runs, then ROUNDS rounds of `runs` runs, each printed."""
    server = SlowServer(delay)
    try:
        workflow = workflow_ensure(user, f"{server.url}/call")
        leased_round(workflow, user, min(runs, WARMUP_RUNS), server, db)
        results = []
        for attempt in range(1, ROUNDS + 1):
            results.append(leased_round(workflow, user, runs, server, db))
            print(f"  (c) round {attempt}/{ROUNDS}: {round_text(results[-1], delay)}", flush=True)
    finally:
        server.close()
    return results


def round_text(result: dict, delay: float) -> str:
    text = (
        f"wall {result['wall']:.2f}s (x{result['wall'] / delay:.1f} the floor), all started"
        f" in {result['start']:.2f}s; {result['completed']} completed, {result['failed']} failed;"
        f" {result['calls']} calls, peak {result['in_flight']} in flight;"
        f" peak {result['connections']} PostgreSQL connections"
    )
    return text + (f"; first error: {str(result['error'])[:300]}" if result["error"] else "")


def report_row(results: list[dict], runs: int, delay: float) -> tuple:
    """The row of run.py's table: (name, engine, floor, unit, target, bound, sign)."""
    wall = statistics.median(result["wall"] for result in results)
    name = f"(c) {runs} runs of one {delay:g} s http.get: wall s (median of {len(results)})"
    return (name, wall, delay, "s", f"<= {TARGET_RATIO * delay:g} s", TARGET_RATIO, -1)


def report_lines(results: list[dict]) -> list[str]:
    def each(key, spec=""):
        return ", ".join(f"{result[key]:{spec}}" for result in results)

    return [
        f"  (c) leased     seconds: {each('wall', '.3f')}; runs completed: {each('completed')},"
        f" failed: {each('failed')}",
        f"  (c) peak calls in flight: {each('in_flight')}; peak PostgreSQL connections to the"
        f" bench database: {each('connections')}",
    ]
