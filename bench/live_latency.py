"""A run event committed by a worker → received by a dashboard client, p50/p99. See bench/README.md.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/<db> BENCH_REDIS_URL=redis://…/<n> \
        .venv/bin/python bench/live_latency.py [--events 1000] [--steps 200]

It starts what it needs: the ASGI app under uvicorn (a subprocess, as the Docker image runs it)
and one `celery worker --pool prefork --concurrency 2`. A round is one run of a `human` approval
followed by `--steps` `tool: noop` steps: once the run waits on the approval, one client opens
(the run page's WebSocket /ws/runs/<id>/ with a session cookie, or the SSE stream
/api/runs/<id>/events/stream/ with a JWT), the driver approves, and the worker executes the
chain. Every event the worker writes after the approval is a sample: from the event's `at`
(stamped when the engine records it, before its transaction commits: the figure is an upper
bound) to the moment the client has read it (the same machine's wall clock). Rounds alternate
between the two clients until each has `--events` samples. The baseline, in the same
invocation: a bare Redis PUBLISH → SUBSCRIBE round trip on the same Redis, `--events` times.
Target (DESIGN §11): p99 <= 100 ms for both clients.
"""

import argparse
import json
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

# Run as a script, this file's folder heads sys.path: the project's root takes its place.
ROOT = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)

from bench import run  # noqa: E402  (sets the bench environment up and calls django.setup())

# isort: split
import httpx  # noqa: E402
import redis  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.test import Client  # noqa: E402
from rest_framework_simplejwt.tokens import RefreshToken  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from interventions.models import Intervention  # noqa: E402
from interventions.services import intervention_resolve  # noqa: E402
from workflows.engine import api  # noqa: E402
from workflows.models import RUN_TERMINAL, Run, RunStatus, Workflow  # noqa: E402
from workflows.services import workflow_create, workflow_version_publish  # noqa: E402

SLUG = "bench-live-latency"
TARGET_P99_MS, TIMEOUT_S, POLL_S = 100, 120, 0.01


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args()

    run.database_prepare()
    redis.Redis.from_url(run.REDIS_URL).flushdb()
    user = get_user_model().objects.get_or_create(username="bench")[0]
    user.is_superuser = True  # views every run, acts on interventions with no group
    user.save(update_fields=["is_superuser"])
    workflow = workflow_ensure(user, args.steps)
    setup = run.environment_line(argparse.Namespace(workers=1, concurrency=2, repeat=1))
    print(setup.rsplit(";", 1)[0])  # (without its "median of": every sample counts here)
    baseline = redis_round_trips(args.events)
    server, workers = Server(), run.Workers(1, 2)
    clients = {"WebSocket": WebSocketClient(server, user), "SSE": SseClient(server, user)}
    samples: dict[str, list[float]] = {name: [] for name in clients}
    try:
        round_(workflow, user, clients["WebSocket"])  # warm-up: imports, connections, URLconf
        while any(len(got) < args.events for got in samples.values()):
            for name, client in clients.items():
                if len(samples[name]) < args.events:
                    samples[name] += round_(workflow, user, client)
    finally:
        workers.stop()
        server.stop()
    report({name: got[: args.events] for name, got in samples.items()}, baseline)


def workflow_ensure(user, steps: int) -> Workflow:
    spec = {
        "slug": SLUG,
        "steps": [
            {"id": "ask", "human": {"type": "approval", "prompt": "Go?"}},
            *({"id": f"s{n}", "tool": "noop"} for n in range(steps)),
        ],
    }
    workflow = Workflow.objects.filter(slug=SLUG).first()
    if workflow is None:
        return workflow_create(source=spec, created_by=user)
    workflow_version_publish(workflow=workflow, source=spec, published_by=user)
    workflow.refresh_from_db()
    return workflow


class Server:
    """`uvicorn config.asgi:application` on a free port, on the bench environment."""

    def __init__(self):
        from tests.conftest import _free_port

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "uvicorn", "config.asgi:application",
                   "--host", "127.0.0.1", "--port", str(self.port),
                   "--lifespan", "off", "--log-level", "warning", "--no-access-log"]  # fmt: skip
        self.process = subprocess.Popen(command, cwd=ROOT, env={**run.os.environ, **run.BENCH_ENV})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/healthz", timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise SystemExit("uvicorn did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


class WebSocketClient:
    """The run page's socket, as the browser opens it: session cookie and the page's Origin."""

    def __init__(self, server: Server, user):
        session = Client()
        session.force_login(user)
        self.server, self.cookie = server, f"sessionid={session.cookies['sessionid'].value}"

    def listen(self, run_obj: Run, after: int, received: list) -> threading.Event:
        headers = {"Origin": self.server.url, "Cookie": self.cookie}
        socket = connect(f"ws://127.0.0.1:{self.server.port}/ws/runs/{run_obj.pk}/",
                         additional_headers=headers)  # fmt: skip
        return _reading(lambda: _socket_events(socket), received)


class SseClient:
    """An API client reading the run's event stream with a JWT, from the seq it has seen."""

    def __init__(self, server: Server, user):
        token = RefreshToken.for_user(user).access_token
        self.server, self.headers = server, {"Authorization": f"Bearer {token}"}

    def listen(self, run_obj: Run, after: int, received: list) -> threading.Event:
        url = f"{self.server.url}/api/runs/{run_obj.pk}/events/stream/?after={after}"
        opened = threading.Event()
        reading = _reading(lambda: _stream_events(url, self.headers, opened), received)
        opened.wait(10)
        return reading


def _reading(events, received: list) -> threading.Event:
    """Read `events()` (event dicts) in a thread into `received` as (read at, event)."""
    done = threading.Event()

    def read():
        try:
            for event in events():
                received.append((time.time(), event))
        finally:
            done.set()

    threading.Thread(target=read, daemon=True).start()
    return done


def _socket_events(socket):
    with socket:
        while True:
            message = json.loads(socket.recv(timeout=TIMEOUT_S))
            yield from message["events"]
            if any(_ends_run(event) for event in message["events"]):
                return


def _stream_events(url: str, headers: dict, opened: threading.Event):
    with httpx.Client(timeout=TIMEOUT_S) as client, client.stream("GET", url, headers=headers) as r:
        opened.set()
        for line in r.iter_lines():  # the server ends the stream after the run's last event
            if line.startswith("data: "):
                yield json.loads(line[len("data: ") :])


def _ends_run(event: dict) -> bool:
    return event["type"] == "run.status" and event["payload"].get("to") in RUN_TERMINAL


def round_(workflow: Workflow, user, client) -> list[float]:
    """One run's worker-written events as `client` received them: latencies in ms."""
    run_obj = api.run_start(workflow=workflow, inputs={}, started_by=user)[0]
    _wait(lambda: Run.objects.get(pk=run_obj.pk).status == RunStatus.WAITING, "the run waits")
    received: list = []
    done = client.listen(run_obj, Run.objects.get(pk=run_obj.pk).event_seq, received)
    ask = Intervention.objects.get(run_id=run_obj.pk)
    intervention_resolve(intervention_id=ask.pk, user=user, decision="approve")
    by_driver = Run.objects.get(pk=run_obj.pk).event_seq  # the approval's events: not a worker's
    if not done.wait(TIMEOUT_S):
        raise SystemExit(f"run {run_obj.pk}: the client did not see it end")
    run_obj.refresh_from_db()
    if run_obj.status != RunStatus.COMPLETED:
        raise SystemExit(f"run {run_obj.pk} ended {run_obj.status}")
    live = [(at, e) for at, e in received if e["seq"] > by_driver]
    seqs = sorted(e["seq"] for _, e in live)
    if seqs != list(range(by_driver + 1, run_obj.event_seq + 1)):
        raise SystemExit(f"run {run_obj.pk}: the client missed or doubled events")
    return [(at - datetime.fromisoformat(e["at"]).timestamp()) * 1000 for at, e in live]


def _wait(predicate, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out: {what}")
        time.sleep(POLL_S)


def redis_round_trips(count: int) -> list[float]:
    """PUBLISH → a subscriber's read of it, on the bench Redis, in ms, one at a time."""
    client = redis.Redis.from_url(run.REDIS_URL)
    subscriber = client.pubsub(ignore_subscribe_messages=True)
    subscriber.subscribe("bench-live-latency")
    subscriber.get_message(timeout=1)  # the subscription's confirmation
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        client.publish("bench-live-latency", b"x")
        if subscriber.get_message(timeout=5) is None:
            raise SystemExit("a PUBLISH did not arrive")
        latencies.append((time.perf_counter() - started) * 1000)
    subscriber.close()
    return latencies


def _percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def report(samples: dict[str, list[float]], baseline: list[float]) -> None:
    print(f"\nevent committed by a worker → client has it, {len(baseline)} events each")
    print(f"{'':<34}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}")
    rows = [(f"{name} (target p99 <= {TARGET_P99_MS})", got) for name, got in samples.items()]
    for label, got in [*rows, ("baseline: Redis PUBLISH→SUBSCRIBE", baseline)]:
        line = f"{_percentile(got, 50):8.1f}{_percentile(got, 99):8.1f}{max(got):8.1f}"
        print(f"{label:<34}{line}")


if __name__ == "__main__":
    main()
