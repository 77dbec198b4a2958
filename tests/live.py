"""The live side as a client sees it: the ASGI app (HTTP, SSE and WebSockets) on a real uvicorn
in a thread of the test process, on the test database and the test Redis, and WebSockets
spoken to as a browser speaks (the session cookie and the page's Origin)."""

import json
import threading
import time
from contextlib import contextmanager

import pytest
import uvicorn
from django.test import Client
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from config.asgi import application
from tests.conftest import _free_port
from workflows.engine.broadcast import groups_send
from workflows.live_access import user_group

RECEIVE_WITHIN_S = 5.0


@contextmanager
def asgi_served():
    """`127.0.0.1:<port>` where uvicorn serves config.asgi's application until the block ends."""
    port = _free_port()
    config = uvicorn.Config(
        application, host="127.0.0.1", port=port, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def session_cookie(user) -> str:
    return signed_in(user)[1]


def signed_in(user) -> tuple[Client, str]:
    """A client signed in as `user`, and its session cookie for a socket of the same session."""
    client = Client()
    client.force_login(user)
    return client, f"sessionid={client.cookies['sessionid'].value}"


def ws_open(server: str, path: str, *, cookie=None, origin="http://127.0.0.1") -> ClientConnection:
    headers = {"Origin": origin} if origin else {}
    if cookie:
        headers["Cookie"] = cookie
    return connect(f"ws://{server}{path}", additional_headers=headers, open_timeout=5)


def ws_refused(server: str, path: str, **kwargs) -> int:
    """The status a refused handshake answered (the test fails if it was accepted)."""
    with pytest.raises(InvalidStatus) as refused:
        ws_open(server, path, **kwargs)
    return refused.value.response.status_code


def ws_events(socket: ClientConnection, within: float = RECEIVE_WITHIN_S) -> list[dict]:
    """The events received until `within` s pass without a message."""
    events = []
    while True:
        try:
            events += json.loads(socket.recv(timeout=within))["events"]
        except TimeoutError:
            return events
        within = 0.5


SENTINEL = "sentinel"


def sentinel_send(*users) -> None:
    """Send each user's sockets an event of type SENTINEL through their user group. Published
    after what came before it, so it arrives after everything already published to them."""
    groups_send([user_group(user.pk) for user in users],
                {"type": "run.events", "events": [{"type": SENTINEL}]})  # fmt: skip


def ws_until_sentinel(socket: ClientConnection) -> list[dict]:
    """The events received before the sentinel (TimeoutError if it does not come)."""
    events = []
    while True:
        for event in json.loads(socket.recv(timeout=RECEIVE_WITHIN_S))["events"]:
            if event["type"] == SENTINEL:
                return events
            events.append(event)
