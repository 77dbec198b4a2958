"""`GET /api/runs/{id}/events/stream/` on a real ASGI server (tests/live.py), read with httpx as
a client reads it."""

import json
import queue
import threading
import time

import httpx
import pytest
import redis
from django.conf import settings
from rest_framework_simplejwt.tokens import RefreshToken

from workflows.api import stream
from workflows.engine.runs import run_start
from workflows.models import RunEvent, RunStatus

pytestmark = pytest.mark.django_db(transaction=True)

CHAIN = """
slug: streamed
steps:
  - id: a
    tool: noop
  - id: b
    needs: [a]
    tool: noop
  - id: c
    needs: [b]
    tool: noop
"""
# Well under the 15 s keep-alive: what arrives within it came live, not from a catch-up read.
FRAME_WITHIN_S = 5.0


@pytest.fixture(scope="module")
def base_url(asgi_server):
    return f"http://{asgi_server}"


def _auth(user) -> dict:
    return {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"}


class Stream:
    """A client reading the stream in a thread: `frames` gets each frame as a dict (`id`,
    `event`, `data` parsed, or `comment`), then None when the server ends the stream."""

    def __init__(self, url: str, headers: dict):
        self.frames: queue.Queue = queue.Queue()
        self.opened = threading.Event()
        self.status = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, args=(url, headers), daemon=True)
        self._thread.start()
        assert self.opened.wait(10), "the stream did not open"

    def _read(self, url, headers):
        try:
            with (
                httpx.Client(timeout=30) as client,
                client.stream("GET", url, headers=headers) as response,
            ):
                self.status = response.status_code
                self.opened.set()
                frame: dict = {}
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return  # leaving the with blocks closes the connection
                    if line == "":
                        if frame:
                            self.frames.put(frame)
                        frame = {}
                    elif line.startswith(":"):
                        frame["comment"] = line[1:].strip()
                    else:
                        field, _, value = line.partition(": ")
                        frame[field] = json.loads(value) if field == "data" else value
        finally:
            self.opened.set()
            self.frames.put(None)

    def next(self, within: float = FRAME_WITHIN_S):
        return self.frames.get(timeout=within)

    def events(self, count: int) -> list[dict]:
        return [self.next() for _ in range(count)]

    def rest(self) -> list[dict]:
        """The event frames until the server ends the stream."""
        frames = []
        while (frame := self.next()) is not None:
            if "comment" not in frame:
                frames.append(frame)
        return frames

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def _frames_of(run) -> list[dict]:
    """The frames the stored events of `run` make."""
    return [
        {
            "id": str(event.seq),
            "event": event.type,
            "data": {
                "seq": event.seq,
                "type": event.type,
                "payload": event.payload,
                "at": event.at.isoformat(),
            },
        }
        for event in RunEvent.objects.filter(run=run).order_by("seq")
    ]


def _url(base_url, run, query="") -> str:
    return f"{base_url}/api/runs/{run.pk}/events/stream/{query}"


def _subscribers(run) -> int:
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    channel = f"{prefix}__group__run.{run.pk}"
    return redis.Redis.from_url(settings.REDIS_URL).pubsub_numsub(channel)[0][1]


def test_stream_sends_the_stored_events_then_the_live_ones_and_ends_with_the_run(
    base_url, make_workflow, operator, drain
):
    # given: a run that has started, its first step queued
    run, _ = run_start(workflow=make_workflow(CHAIN), inputs={}, started_by=operator)
    stored = _frames_of(run)
    client = Stream(_url(base_url, run), _auth(operator))
    assert client.status == 200
    assert client.events(len(stored)) == stored

    # when: the engine executes it, in this process, while the client listens
    drain()

    # then: every later event arrived live, once and in order, and the stream ended
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    everything = _frames_of(run)
    assert len(everything) > len(stored)
    assert client.rest() == everything[len(stored) :]
    assert everything[-1]["event"] == "run.status"
    assert everything[-1]["data"]["payload"]["to"] == RunStatus.COMPLETED
    client.close()


def test_resuming_with_last_event_id_or_after_gives_exactly_the_events_after_it(
    base_url, make_workflow, operator, drain
):
    run, _ = run_start(workflow=make_workflow(CHAIN), inputs={}, started_by=operator)
    drain()
    everything = _frames_of(run)

    resumed = Stream(_url(base_url, run), {**_auth(operator), "Last-Event-ID": "3"})
    after = Stream(_url(base_url, run, "?after=5"), _auth(operator))

    assert resumed.rest() == everything[3:]
    assert after.rest() == everything[5:]
    header_wins = Stream(_url(base_url, run, "?after=1"), {**_auth(operator), "Last-Event-ID": "4"})
    assert header_wins.rest() == everything[4:]


def test_stream_refuses_as_the_events_list_does(base_url, make_workflow, make_user, operator):
    run, _ = run_start(workflow=make_workflow(CHAIN), inputs={}, started_by=operator)
    stranger = make_user()
    list_url = f"{base_url}/api/runs/{run.pk}/events/"
    cases = [
        ({}, 401, "not_authenticated"),
        ({"Authorization": "Bearer not-a-token"}, 401, "token_not_valid"),
        (_auth(stranger), 404, "not_found"),
    ]
    for headers, status, code in cases:
        for url in (_url(base_url, run), list_url):
            response = httpx.get(url, headers=headers, timeout=10)
            assert response.status_code == status, (url, response.text)
            assert response.json()["error"]["code"] == code
            if status == 401:
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
    bad = httpx.get(_url(base_url, run), headers={**_auth(operator), "Last-Event-ID": "x"})
    assert bad.status_code == 400
    missing = httpx.get(
        f"{base_url}/api/runs/00000000-0000-0000-0000-000000000000/events/stream/",
        headers=_auth(operator),
    )
    assert missing.status_code == 404


def test_a_quiet_stream_sends_keep_alives_and_a_disconnect_ends_its_subscription(
    base_url, make_workflow, operator, monkeypatch
):
    monkeypatch.setattr(stream, "KEEPALIVE_S", 0.2)
    run, _ = run_start(workflow=make_workflow(CHAIN), inputs={}, started_by=operator)
    stored = _frames_of(run)
    client = Stream(_url(base_url, run), _auth(operator))
    assert client.events(len(stored)) == stored
    assert client.next() == {"comment": "keep-alive"}
    assert _subscribers(run) == 1

    client.close()

    deadline = time.monotonic() + 5
    while _subscribers(run):
        assert time.monotonic() < deadline, "the disconnected stream is still subscribed"
        time.sleep(0.05)


def test_a_run_executed_by_a_worker_streams_every_event_once_across_the_switch_to_live(
    base_url, make_workflow, operator, celery_worker
):
    # given: a worker executing the run as the client connects, so its events are committed
    # before, during and after the stream subscribes and reads the stored ones
    workflow = make_workflow(CHAIN)
    run, _ = run_start(workflow=workflow, inputs={}, started_by=operator)
    client = Stream(_url(base_url, run), _auth(operator))

    # when: the stream ends
    frames = client.rest()

    # then: it ended with the run, having sent each of its events once, in order
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert frames == _frames_of(run)
