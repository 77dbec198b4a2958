"""The dashboard's WebSockets (`/ws/runs/<id>/`, `/ws/feed/`) on a real ASGI server, spoken to
as a browser speaks: the session cookie and the page's Origin (tests/live.py)."""

import asyncio
import uuid

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.sessions.models import Session
from guardian.shortcuts import assign_perm, remove_perm
from websockets.exceptions import ConnectionClosed

from tests.conftest import drain
from tests.live import (
    sentinel_send,
    session_cookie,
    signed_in,
    ws_events,
    ws_open,
    ws_refused,
    ws_until_sentinel,
)
from workflows.consumers import _LayerWatch
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
        foreign, _ = run_start(workflow=flows[1], inputs={}, started_by=operator)
        shared, _ = run_start(workflow=flows[0], inputs={}, started_by=operator)
        sentinel_send(pilot, operator, stranger)  # after both runs' events, from one publisher
        seen_by_pilot = {event["run"] for event in ws_until_sentinel(mine)}
        seen_by_operator = {event["run"] for event in ws_until_sentinel(everything)}
        seen_by_stranger = ws_until_sentinel(nothing)

    assert seen_by_pilot == {str(shared.pk)}
    assert seen_by_operator == {str(shared.pk), str(foreign.pk)}
    assert seen_by_stranger == []


@pytest.fixture
def readers(pilot, flows):
    """A group the pilot is in, with view on the foreign workflow and a global permission."""
    group = Group.objects.create(name="readers")
    group.user_set.add(pilot)
    assign_perm("workflows.view_workflow", group, flows[1])
    group.permissions.add(Permission.objects.get(codename="run_workflow"))
    pilot.user_permissions.add(Permission.objects.get(codename="change_workflow"))
    return group


def _sign_out(pilot, client, flows, readers):
    client.post("/logout/")


def _delete_session(pilot, client, flows, readers):
    Session.objects.filter(session_key=client.session.session_key).delete()


def _deactivate(pilot, client, flows, readers):
    pilot.is_active = False
    pilot.save()


def _change_password(pilot, client, flows, readers):
    pilot.set_password("another")
    pilot.save()


def _revoke_own_grant(pilot, client, flows, readers):
    remove_perm("workflows.view_workflow", pilot, flows[0])


def _revoke_group_grant(pilot, client, flows, readers):
    remove_perm("workflows.view_workflow", readers, flows[1])


def _revoke_global_permission(pilot, client, flows, readers):
    pilot.user_permissions.remove(Permission.objects.get(codename="change_workflow"))


def _revoke_group_permission(pilot, client, flows, readers):
    readers.permissions.clear()


def _revoke_permission_from_its_side(pilot, client, flows, readers):
    Permission.objects.get(codename="run_workflow").group_set.remove(readers)


LOSSES = {
    "signs out": _sign_out,
    "session deleted": _delete_session,
    "deactivated": _deactivate,
    "deleted": lambda pilot, *_: pilot.delete(),
    "password changed": _change_password,
    "own object permission revoked": _revoke_own_grant,
    "group's object permission revoked": _revoke_group_grant,
    "global permission revoked": _revoke_global_permission,
    "group's global permission revoked": _revoke_group_permission,
    "permission taken from the group, from its side": _revoke_permission_from_its_side,
    "leaves the group": lambda pilot, client, flows, readers: pilot.groups.remove(readers),
    "group emptied": lambda pilot, client, flows, readers: readers.user_set.clear(),
    "group deleted": lambda pilot, client, flows, readers: readers.delete(),
}


def _closes(socket) -> bool:
    """Whether the server closes `socket` (messages before the close are skipped)."""
    try:
        while True:
            socket.recv(timeout=10)
    except ConnectionClosed:
        return True
    except TimeoutError:
        return False


@pytest.mark.parametrize("loss", LOSSES.values(), ids=LOSSES.keys())
def test_sockets_close_when_the_access_they_were_opened_with_may_have_changed(
    asgi_server, pilot, flows, operator, readers, loss
):
    shared, _ = run_start(workflow=flows[0], inputs={}, started_by=operator)
    client, cookie = signed_in(pilot)
    with (
        ws_open(asgi_server, f"/ws/runs/{shared.pk}/", cookie=cookie) as run_page,
        ws_open(asgi_server, "/ws/feed/", cookie=cookie) as feed,
    ):
        loss(pilot, client, flows, readers)

        assert _closes(run_page)
        assert _closes(feed)


def test_a_socket_stays_open_when_its_user_is_saved_without_a_change_of_access(
    asgi_server, pilot, readers
):
    with ws_open(asgi_server, "/ws/feed/", cookie=session_cookie(pilot)) as feed:
        pilot.first_name = "Ada"
        pilot.save()
        signed_in(pilot)  # signing in elsewhere saves last_login
        sentinel_send(pilot)

        assert ws_until_sentinel(feed) == []  # raises ConnectionClosed had it closed


def test_after_a_revoke_the_run_page_is_refused_and_after_a_grant_the_feed_carries_more(
    asgi_server, pilot, flows, operator
):
    shared, _ = run_start(workflow=flows[0], inputs={}, started_by=operator)
    cookie = session_cookie(pilot)
    with ws_open(asgi_server, f"/ws/runs/{shared.pk}/", cookie=cookie) as run_page:
        remove_perm("workflows.view_workflow", pilot, flows[0])
        assert _closes(run_page)
    assert ws_refused(asgi_server, f"/ws/runs/{shared.pk}/", cookie=cookie) == 403

    with ws_open(asgi_server, "/ws/feed/", cookie=cookie) as feed:
        assign_perm("workflows.view_workflow", pilot, flows[1])
        assert _closes(feed)
    with ws_open(asgi_server, "/ws/feed/", cookie=cookie) as feed:  # as the page reconnects
        granted, _ = run_start(workflow=flows[1], inputs={}, started_by=operator)
        sentinel_send(pilot)
        assert {event["run"] for event in ws_until_sentinel(feed)} == {str(granted.pk)}


def test_a_socket_closes_when_its_session_expires(asgi_server, pilot):
    client, cookie = signed_in(pilot)
    session = client.session
    session.set_expiry(3)
    session.save()
    with ws_open(asgi_server, "/ws/feed/", cookie=cookie) as feed:
        assert _closes(feed)
    assert ws_refused(asgi_server, "/ws/feed/", cookie=cookie) == 403


def _watchers() -> list[asyncio.Task]:
    return [task for task in asyncio.all_tasks()
            if task.get_coro().__qualname__ == "_LayerWatch._watch"]  # fmt: skip


def test_sockets_joining_a_watch_together_start_one_watcher_which_it_holds():
    async def join_together():
        watch, sockets = _LayerWatch(), [object(), object()]
        joined = await asyncio.gather(*(watch.join(socket) for socket in sockets))
        watchers = _watchers()
        held = watch.watcher
        for socket in sockets:
            watch.leave(socket)
        await asyncio.gather(*watchers)  # with no socket left, it ends at its next check
        return joined, watchers, held

    joined, watchers, held = asyncio.run(join_together())
    assert joined == [True, True]
    assert watchers == [held]


def test_the_watch_reads_a_layer_host_given_as_a_dict(settings):
    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    hosts = [{"address": config["hosts"][0]}]
    settings.CHANNEL_LAYERS = {
        "default": {**settings.CHANNEL_LAYERS["default"], "CONFIG": {**config, "hosts": hosts}}
    }

    async def join():
        watch, socket = _LayerWatch(), object()
        joined = await watch.join(socket)
        watch.leave(socket)
        await watch.watcher
        return joined

    assert asyncio.run(join())
