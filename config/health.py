"""Liveness and readiness probes: plain Django views, no authentication, JSON bodies. Anyone
learns whether the installation is ready; only observers (config.metrics) learn what fails and
why, since node names and error texts map the insides for an attacker."""

import logging

import redis
from django.conf import settings
from django.db import connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.celery import app as celery_app
from config.metrics import observer

logger = logging.getLogger(__name__)


@never_cache
@require_GET
def healthz(request):
    """The process is up and serving requests; nothing else is checked."""
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request):
    """Every dependency answers: database, Redis, broker, and (if required) a live worker.

    {"status": "ok" | "unavailable"}, with each check's result for observers.
    """
    timeout = settings.READYZ_TIMEOUT_S
    checks = {"database": _database}
    if settings.REDIS_URL:
        checks["redis"] = _redis
    checks["broker"] = _broker
    if settings.READYZ_REQUIRE_WORKER:
        checks["worker"] = _worker
    results = {}
    for name, check in checks.items():
        if name == "worker" and not results["broker"]["ok"]:
            # A ping through a dead broker only retries its way to the same answer, slowly.
            results[name] = {"ok": False, "error": "not checked: the broker is unreachable"}
            continue
        try:
            results[name] = {"ok": True, **(check(timeout) or {})}
        except Exception as exc:  # a probe reports failures, it never raises them
            logger.warning("readyz: %s check failed: %s", name, exc)
            results[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    failing = [name for name, result in results.items() if not result["ok"]]
    body = {"status": "unavailable" if failing else "ok"}
    if observer(request):
        body.update(failing=failing, checks=results)
    return JsonResponse(body, status=503 if failing else 200)


def _database(timeout: float) -> None:
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def _redis(timeout: float) -> None:
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=timeout, socket_timeout=timeout
    )
    try:
        client.ping()
    finally:
        client.close()


def _broker(timeout: float) -> dict | None:
    with celery_app.connection_for_write() as connection:
        if connection.transport_cls == "memory":
            return {"transport": "memory (in-process)"}  # nothing to connect to
        connection.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
    return None


def _worker(timeout: float) -> dict:
    replies = celery_app.control.ping(timeout=timeout, limit=1) or []
    if not replies:
        raise RuntimeError(f"no Celery worker answered a ping within {timeout:g}s")
    return {"workers": sorted(name for reply in replies for name in reply)}
