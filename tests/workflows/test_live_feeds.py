"""The dashboard's WebSockets (`/ws/runs/<id>/`, `/ws/feed/`) on a real ASGI server, spoken to
as a browser speaks: the session cookie and the page's Origin (tests/live.py)."""

import uuid

import pytest
from guardian.shortcuts import assign_perm

from tests.conftest import drain
from tests.live import session_cookie, ws_events, ws_open, ws_refused
from workflows.engine.runs import run_start

pytestmark = pytest.mark.django_db(transaction=True)

FLOW = "slug: {slug}\nsteps:\n  - id: a\n    tool: noop\n"


@pytest.fixture
def flows(make_workflow):
    return make_workflow(FLOW.format(slug="shared")), make_workflow(FLOW.format(slug="foreign"))


@pytest.fixture
def pilot(make_user, flows):
    user = make_user("pilot")
    assign_perm("workflows.view_workflow", user, flows[0])
    return user


def test_a_run_page_socket_needs_a_session_an_allowed_origin_and_a_visible_run(
    asgi_server, pilot, flows, operator
):
    shared, _ = run_start(workflow=flows[0], inputs={}, started_by=operator)
    foreign, _ = run_start(workflow=flows[1], inputs={}, started_by=operator)
    cookie, evil = session_cookie(pilot), "http://evil.test"

    assert ws_refused(asgi_server, f"/ws/runs/{shared.pk}/") == 403  # no session
    assert ws_refused(asgi_server, f"/ws/runs/{shared.pk}/", cookie=cookie, origin=evil) == 403
    assert ws_refused(asgi_server, f"/ws/runs/{foreign.pk}/", cookie=cookie) == 403
    assert ws_refused(asgi_server, f"/ws/runs/{uuid.uuid4()}/", cookie=cookie) == 403
    assert ws_refused(asgi_server, "/ws/feed/") == 403
    assert ws_refused(asgi_server, "/ws/feed/", cookie=cookie, origin=evil) == 403

    with ws_open(asgi_server, f"/ws/runs/{shared.pk}/", cookie=cookie) as live:
        drain()  # the run's steps, executed after the page connected
        events = ws_events(live)
    assert events, "the run's events arrive"
    assert {event["run"] for event in events} == {str(shared.pk)}
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)


def test_the_feed_carries_only_the_runs_of_workflows_the_user_may_view(
    asgi_server, pilot, flows, operator, make_user
):
    stranger = make_user()  # no group, no permission: a silent feed
    with (
        ws_open(asgi_server, "/ws/feed/", cookie=session_cookie(pilot)) as mine,
        ws_open(asgi_server, "/ws/feed/", cookie=session_cookie(operator)) as everything,
        ws_open(asgi_server, "/ws/feed/", cookie=session_cookie(stranger)) as nothing,
    ):
        shared, _ = run_start(workflow=flows[0], inputs={}, started_by=operator)
        foreign, _ = run_start(workflow=flows[1], inputs={}, started_by=operator)
        seen_by_pilot = {event["run"] for event in ws_events(mine)}
        seen_by_operator = {event["run"] for event in ws_events(everything)}
        seen_by_stranger = ws_events(nothing, within=1.0)

    assert seen_by_pilot == {str(shared.pk)}
    assert seen_by_operator == {str(shared.pk), str(foreign.pk)}
    assert seen_by_stranger == []
