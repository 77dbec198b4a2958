"""Rate limits nobody can dodge: the client address comes from NUM_PROXIES, not from whatever
X-Forwarded-For a client sends; the token views and the sign-in pages have a scope of their
own; and one counter limits everyone together."""

import pytest
import redis
from django.conf import settings
from django.test import RequestFactory
from rest_framework import throttling
from rest_framework.test import APIClient

from config.throttles import client_address
from tests.workflows.test_api import assert_error, client_for

pytestmark = pytest.mark.django_db

HIGH = "100000/hour"


@pytest.fixture
def rates(monkeypatch):
    """Set the rates (the rest stay high) on fresh buckets: the cache outlives test databases."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    for key in client.scan_iter("*throttle_*"):
        client.delete(key)

    def set_rates(**given):
        scopes = ("user", "anon", "auth", "global")
        monkeypatch.setattr(throttling.SimpleRateThrottle, "THROTTLE_RATES",
                            {scope: given.get(scope, HIGH) for scope in scopes})  # fmt: skip

    return set_rates


def _sign_in(address="10.0.0.1", **headers):
    body = {"username": "nobody", "password": "wrong"}
    return APIClient().post("/api/auth/token/", body, format="json", REMOTE_ADDR=address,
                            **headers)  # fmt: skip


def test_fresh_forwarded_for_values_share_one_bucket(rates):
    rates(anon="3/hour")

    statuses = [_sign_in(HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code for n in range(4)]

    assert statuses[:3] == [401] * 3
    assert statuses[3] == 429


def test_behind_a_proxy_the_address_it_saw_is_the_clients(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    forged = "203.0.113.7, 198.51.100.1"  # the client wrote the first, the proxy appended
    request = RequestFactory().get("/", HTTP_X_FORWARDED_FOR=forged, REMOTE_ADDR="10.0.0.9")

    assert client_address(request) == "198.51.100.1"


def test_a_forwarded_for_entry_that_is_no_address_is_not_taken(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 2}
    request = RequestFactory().get("/", HTTP_X_FORWARDED_FOR="x' or 1=1", REMOTE_ADDR="10.0.0.9")

    assert client_address(request) == "10.0.0.9"


def test_without_proxies_the_address_is_the_connections():
    request = RequestFactory().get("/", HTTP_X_FORWARDED_FOR="203.0.113.7", REMOTE_ADDR="10.0.0.9")

    assert client_address(request) == "10.0.0.9"


def test_the_token_views_have_a_tighter_limit_of_their_own(rates):
    rates(auth="2/hour")

    statuses = [_sign_in().status_code for _ in range(2)]
    refresh = APIClient().post("/api/auth/token/refresh/", {"refresh": "x"}, format="json",
                               REMOTE_ADDR="10.0.0.1")  # fmt: skip

    assert statuses == [401, 401]
    assert_error(refresh, 429, "throttled")
    assert _sign_in(address="10.0.0.2").status_code == 401  # another address, another bucket


@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_the_sign_in_pages_share_the_token_views_limit_per_address(rates, client, path):
    rates(auth="3/hour")

    def sign_in(username, address="10.0.0.1"):
        body = {"username": username, "password": "wrong"}
        return client.post(path, body, REMOTE_ADDR=address)

    # a password spray: another username each time
    statuses = [sign_in(f"user{n}").status_code for n in range(2)] + [_sign_in().status_code]
    refused = sign_in("user9")

    assert statuses == [200, 200, 401]
    assert refused.status_code == 429
    assert "Too many sign-in attempts from this address" in refused.content.decode()
    assert int(refused["Retry-After"]) >= 1
    assert client.get(path).status_code == 200  # the page itself still shows
    assert sign_in("user9", address="10.0.0.2").status_code == 200  # another address's bucket


def test_the_global_limit_trips_across_users(rates, make_user):
    rates(**{"global": "5/hour"})
    clients = [client_for(make_user("operator")) for _ in range(3)]

    statuses = [client.get("/api/workflows/").status_code for client in clients for _ in (1, 2)]

    assert statuses == [200] * 5 + [429]
    error = assert_error(clients[0].get("/api/workflows/"), 429, "throttled")
    assert error["details"]["retry_after_s"] >= 1
