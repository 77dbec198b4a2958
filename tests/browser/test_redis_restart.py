"""The dashboard when its Redis restarts: the server closes the pages' sockets, which reconnect
once Redis is back and reload their parts, so nothing that happened meanwhile is missed. On a
Redis of the test's own (tests/test_restarts.py), never the shared one."""

from urllib.parse import urlparse

import pytest
from django.test import Client
from playwright.sync_api import expect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.browser.conftest import AsgiServer, mark, not_reloaded, server_environment, signed_in
from tests.browser.test_pilot_flow import APPROVAL, start
from tests.conftest import drain
from tests.live import sentinel_send, ws_until_sentinel

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def own_server(own_redis):
    running = AsgiServer(server_environment(REDIS_URL=own_redis.url))
    yield running
    running.stop()


def _feed(server: AsgiServer, user):
    client = Client()
    client.force_login(user)
    headers = {"Origin": server.url, "Cookie": f"sessionid={client.cookies['sessionid'].value}"}
    return connect(f"ws://127.0.0.1:{server.port}/ws/feed/", additional_headers=headers)


def test_the_server_closes_a_feed_when_its_redis_restarts_and_the_feed_opens_again(
    own_server, own_redis, layer_on_own_redis, make_user
):
    pilot = make_user("pilot")
    with _feed(own_server, pilot) as feed:
        own_redis.restart()  # what was published to the old server is gone

        with pytest.raises(ConnectionClosed):
            feed.recv(timeout=10)

    with _feed(own_server, pilot) as feed:  # open, and listening to the new server
        sentinel_send(pilot)
        assert ws_until_sentinel(feed) == []  # raises ConnectionClosed had it closed


@pytest.fixture
def layer_on_own_redis(own_redis, settings):
    """This process's broadcasts go to the own Redis, where the server listens (the prefix as
    config/settings/base.py makes it from the URL)."""
    config = {"hosts": [own_redis.url], "prefix": f"chameleon{urlparse(own_redis.url).path}"}
    settings.CHANNEL_LAYERS = {"default": {**settings.CHANNEL_LAYERS["default"], "CONFIG": config}}


def test_the_queue_says_reconnecting_while_redis_is_down_and_then_catches_up(
    own_server, own_redis, layer_on_own_redis, new_page, make_pilot, make_workflow, operator
):
    payments = make_workflow(APPROVAL)
    queue = signed_in(new_page, make_pilot(payments), base_url=own_server.url)
    expect(queue.get_by_test_id("queue-empty")).to_be_visible()
    mark(queue)

    own_redis.stop()
    expect(queue.locator("#live-status")).to_have_text("Reconnecting…")
    start(payments, operator)  # its broadcast is lost: Redis is down
    drain()
    own_redis.start()

    expect(queue.locator("#live-status")).to_have_text("Live")
    expect(queue.get_by_test_id("queue-row")).to_have_count(1)  # caught up
    start(payments, operator, "Globex", 480)
    drain()
    expect(queue.get_by_test_id("queue-row")).to_have_count(2)  # and live again
    assert not_reloaded(queue)
