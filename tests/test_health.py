"""Liveness and readiness probes."""

import pytest

from config import health


def test_healthz_is_200_without_touching_the_database(client):
    # no django_db mark: a query here would raise
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_is_503_naming_redis_when_it_does_not_answer(client, settings, monkeypatch):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1
    monkeypatch.setattr(health, "_worker", lambda timeout: {"workers": ["stub@host"]})

    response = client.get("/readyz")

    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["failing"] == ["redis"]
    assert body["checks"]["redis"]["ok"] is False
    assert "Connection" in body["checks"]["redis"]["error"]
    assert body["checks"]["database"] == {"ok": True}


@pytest.mark.django_db
def test_readyz_is_503_naming_the_worker_when_none_answers(client, settings):
    # Runs before the module's worker starts (the celery_worker fixture is module-scoped).
    settings.READYZ_TIMEOUT_S = 0.3

    response = client.get("/readyz")

    body = response.json()
    assert response.status_code == 503
    assert body["failing"] == ["worker"]
    assert "no Celery worker answered" in body["checks"]["worker"]["error"]
    assert body["checks"]["broker"] == {"ok": True}


@pytest.mark.django_db
def test_readyz_is_503_naming_broker_and_worker_when_the_broker_is_down(client, monkeypatch):
    monkeypatch.setattr(health.celery_app.conf, "broker_url", "redis://127.0.0.1:1/0")

    response = client.get("/readyz")

    body = response.json()
    assert response.status_code == 503
    assert body["failing"] == ["broker", "worker"]
    assert "not checked" in body["checks"]["worker"]["error"]


@pytest.mark.django_db
def test_readyz_skips_the_worker_when_not_required(client, settings):
    settings.READYZ_REQUIRE_WORKER = False

    response = client.get("/readyz")

    assert response.status_code == 200
    assert "worker" not in response.json()["checks"]


# Last in the module: the worker it starts lives until the module ends.
@pytest.mark.django_db
def test_readyz_is_200_when_database_redis_broker_and_a_worker_answer(client, celery_worker):
    response = client.get("/readyz")

    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ok"
    assert body["failing"] == []
    assert set(body["checks"]) == {"database", "redis", "broker", "worker"}
    assert body["checks"]["worker"]["workers"], body
