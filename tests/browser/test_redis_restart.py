"""The dashboard when its Redis restarts: the server closes the pages' sockets, which reconnect
once Redis is back and reload their parts, so nothing that happened meanwhile is missed. On a
Redis of the test's own (tests/test_restarts.py), never the shared one."""

import pytest
from django.test import Client
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.browser.conftest import AsgiServer, server_environment

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
    own_server, own_redis, make_user
):
    pilot = make_user("pilot")
    with _feed(own_server, pilot) as feed:
        own_redis.restart()  # what was published to the old server is gone

        with pytest.raises(ConnectionClosed):
            feed.recv(timeout=10)

    with _feed(own_server, pilot) as feed, pytest.raises(TimeoutError):  # open, and quiet
        feed.recv(timeout=0.5)
