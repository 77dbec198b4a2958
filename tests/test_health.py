"""Liveness and readiness probes: anyone learns ok / not ok, observers (staff, the metrics
token) what fails and why."""

import socket

import pytest
from django.test import Client

from config import health

HOST = socket.gethostname()  # a worker's node name is <name>@<host>


@pytest.fixture
def staff(client, make_user):
    client.force_login(make_user(superuser=True))
    return client


def test_healthz_is_200_without_touching_the_database(client):
    # no django_db mark: a query here would raise
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_is_503_naming_the_worker_when_none_answers(staff, settings):
    # The one case without a worker: it runs before the module's worker starts (the
    # celery_worker fixture is module-scoped), as every test that needs a live one comes after.
    settings.READYZ_TIMEOUT_S = 0.3

    response = staff.get("/readyz")

    body = response.json()
    assert response.status_code == 503
    assert body["failing"] == ["worker"]
    assert "no Celery worker answered" in body["checks"]["worker"]["error"]
    assert body["checks"]["broker"] == {"ok": True}


@pytest.mark.django_db
def test_readyz_is_503_naming_broker_and_worker_when_the_broker_is_down(staff, monkeypatch):
    monkeypatch.setattr(health.celery_app.conf, "broker_url", "redis://127.0.0.1:1/0")

    response = staff.get("/readyz")

    body = response.json()
    assert response.status_code == 503
    assert body["failing"] == ["broker", "worker"]
    assert "not checked" in body["checks"]["worker"]["error"]


@pytest.mark.django_db
def test_readyz_skips_the_worker_when_not_required(staff, settings):
    settings.READYZ_REQUIRE_WORKER = False

    response = staff.get("/readyz")

    assert response.status_code == 200
    assert "worker" not in response.json()["checks"]


# From here on, the module's real worker (started by the first test that asks for it) answers.
@pytest.mark.django_db
def test_readyz_is_503_naming_redis_when_it_does_not_answer(staff, settings, celery_worker):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1; the broker does

    response = staff.get("/readyz")

    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["failing"] == ["redis"]
    assert body["checks"]["redis"]["ok"] is False
    assert "Connection" in body["checks"]["redis"]["error"]
    assert body["checks"]["database"] == {"ok": True}


@pytest.mark.django_db
def test_anonymous_callers_learn_only_that_it_is_not_ready(client, settings, celery_worker):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}  # not the worker's node, nor the error


@pytest.mark.django_db
def test_the_metrics_token_shows_the_details(client, settings, celery_worker):
    settings.METRICS_TOKEN = "scrape-me"

    wrong = client.get("/readyz", HTTP_AUTHORIZATION="Bearer guessed")
    right = client.get("/readyz", HTTP_AUTHORIZATION="Bearer scrape-me")

    assert wrong.json() == {"status": "ok"}
    assert right.json()["checks"]["worker"] == {"ok": True, "workers": [f"shared@{HOST}"]}


@pytest.mark.django_db
def test_readyz_is_200_when_database_redis_broker_and_a_worker_answer(staff, celery_worker):
    assert Client().get("/readyz").json() == {"status": "ok"}  # signed out: no details
    response = staff.get("/readyz")

    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert body["failing"] == []
    assert set(body["checks"]) == {"database", "redis", "broker", "worker"}
    assert body["checks"]["worker"]["workers"], body
