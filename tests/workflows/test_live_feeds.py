"""The dashboard's WebSockets (`/ws/runs/<id>/`, `/ws/feed/`) on a real ASGI server (uvicorn in
a thread of this process, on the test database and the test Redis), spoken to as a browser
speaks: the session cookie and the page's Origin."""

import json
import socket
import threading
import time
import uuid

import pytest
import uvicorn
from django.test import Client
from guardian.shortcuts import assign_perm
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from config.asgi import application
from tests.conftest import drain
from workflows.engine.runs import run_start

pytestmark = pytest.mark.django_db(transaction=True)

FLOW = "slug: {slug}\nsteps:\n  - id: a\n    tool: noop\n"
RECEIVE_WITHIN_S = 5.0


@pytest.fixture(scope="module")
def server():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
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
    yield f"127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def _open(server, path, *, cookie=None, origin="http://127.0.0.1"):
    headers = {"Origin": origin} if origin else {}
    if cookie:
        headers["Cookie"] = cookie
    return connect(f"ws://{server}{path}", additional_headers=headers, open_timeout=5)


def _refused(server, path, **kwargs) -> int:
    with pytest.raises(InvalidStatus) as refused:
        _open(server, path, **kwargs)
    return refused.value.response.status_code


def _events(socket_, within=RECEIVE_WITHIN_S) -> list[dict]:
    """The events received until `within` s pass without a message."""
    events = []
    while True:
        try:
            events += json.loads(socket_.recv(timeout=within))["events"]
        except TimeoutError:
            return events
        within = 0.5


@pytest.fixture
def flows(make_workflow):
    return make_workflow(FLOW.format(slug="shared")), make_workflow(FLOW.format(slug="foreign"))


@pytest.fixture
def pilot(make_user, flows):
    user = make_user("pilot")
    assign_perm("workflows.view_workflow", user, flows[0])
    return user


def test_a_run_page_socket_needs_a_session_an_allowed_origin_and_a_visible_run(
    server, pilot, flows, operator
):
    shared, _ = run_start(workflow=flows[0], inputs={}, started_by=operator)
    foreign, _ = run_start(workflow=flows[1], inputs={}, started_by=operator)
    cookie, evil = _cookie(pilot), "http://evil.test"

    assert _refused(server, f"/ws/runs/{shared.pk}/") == 403  # no session
    assert _refused(server, f"/ws/runs/{shared.pk}/", cookie=cookie, origin=evil) == 403
    assert _refused(server, f"/ws/runs/{foreign.pk}/", cookie=cookie) == 403
    assert _refused(server, f"/ws/runs/{uuid.uuid4()}/", cookie=cookie) == 403
    assert _refused(server, "/ws/feed/") == 403
    assert _refused(server, "/ws/feed/", cookie=cookie, origin=evil) == 403

    with _open(server, f"/ws/runs/{shared.pk}/", cookie=cookie) as live:
        drain()  # the run's steps, executed after the page connected
        events = _events(live)
    assert events, "the run's events arrive"
    assert {event["run"] for event in events} == {str(shared.pk)}
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)


def test_the_feed_carries_only_the_runs_of_workflows_the_user_may_view(
    server, pilot, flows, operator, make_user
):
    stranger = make_user()  # no group, no permission: a silent feed
    with (
        _open(server, "/ws/feed/", cookie=_cookie(pilot)) as mine,
        _open(server, "/ws/feed/", cookie=_cookie(operator)) as everything,
        _open(server, "/ws/feed/", cookie=_cookie(stranger)) as nothing,
    ):
        shared, _ = run_start(workflow=flows[0], inputs={}, started_by=operator)
        foreign, _ = run_start(workflow=flows[1], inputs={}, started_by=operator)
        seen_by_pilot = {event["run"] for event in _events(mine)}
        seen_by_operator = {event["run"] for event in _events(everything)}
        seen_by_stranger = _events(nothing, within=1.0)

    assert seen_by_pilot == {str(shared.pk)}
    assert seen_by_operator == {str(shared.pk), str(foreign.pk)}
    assert seen_by_stranger == []
