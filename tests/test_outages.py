"""While PostgreSQL or Redis is unreachable the API answers in its JSON shape, not an HTML 500:
a 503 with Retry-After for what needs the database; rate limits and the sign-in limits kept in
Redis let requests through; /healthz stays 200. (Real services on ports where nothing listens.)"""

import socket
from contextlib import contextmanager

import pytest
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from tests.workflows.test_api import client_for


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def database_down():
    saved = connection.settings_dict["PORT"]
    connection.close()
    connection.settings_dict["PORT"] = _closed_port()
    try:
        yield
    finally:
        connection.close()
        connection.settings_dict["PORT"] = saved


@pytest.fixture
def redis_down(settings):
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    }


@pytest.mark.django_db(transaction=True)
def test_with_the_database_down_the_api_answers_503_with_retry_after(operator):
    api = client_for(operator)  # its token made while the database answers

    with database_down():
        response = api.get("/api/workflows/")
        healthz = Client().get("/healthz")

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["error"]["code"] == "unavailable"
    assert healthz.status_code == 200


@pytest.mark.django_db
def test_with_redis_down_rate_limits_let_requests_through(operator, redis_down):
    response = client_for(operator).get("/api/workflows/")

    assert response.status_code == 200
    assert Client().get("/healthz").status_code == 200


@pytest.mark.django_db
def test_with_redis_down_signing_in_and_refreshing_still_work(operator, redis_down):
    credentials = {"username": operator.username, "password": "pw"}

    pair = APIClient().post("/api/auth/token/", credentials, format="json")
    refreshed = APIClient().post("/api/auth/token/refresh/", {"refresh": pair.json()["refresh"]},
                                 format="json")  # fmt: skip
    page = Client().post("/login/", credentials)

    assert (pair.status_code, refreshed.status_code) == (200, 200)
    assert page.status_code == 302
