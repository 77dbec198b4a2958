"""Tests: real PostgreSQL and Redis on 127.0.0.1 (override with DATABASE_URL / REDIS_URL)."""

import os
import tempfile

# Shared with the worker subprocesses the tests start (they inherit the environment).
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="chameleon-metrics-"))
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/chameleon")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")

from .base import *  # noqa: E402, F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The file scheduler: transactional tests flush the database beat would read its schedule from.
CELERY_BEAT_SCHEDULER = "celery.beat:PersistentScheduler"
HTTP_TOOLS_ALLOWED_HOSTS = ["127.0.0.1"]  # the tests' own HTTP servers
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"  # never mail anyone from tests
CHAMELEON = {
    **CHAMELEON,  # noqa: F405
    "LEASE_GRACE_S": 1,
    # tests/test_restarts.py runs its worker with production's 60.
    "REDISPATCH_AFTER_S": env.int("CHAMELEON_REDISPATCH_AFTER_S", default=5),  # noqa: F405
}
REST_FRAMEWORK = {
    **REST_FRAMEWORK,  # noqa: F405
    # The suite signs in and calls a lot; tests of the limits lower them.
    "DEFAULT_THROTTLE_RATES": {
        "user": "100000/min",
        "anon": "100000/min",
        "auth": "100000/min",
        "global": "10000000/min",
    },
}
AXES_FAILURE_LIMIT = 1000  # tests of the lockout lower it
AXES_USERNAME_FAILURE_LIMIT = 1_000_000  # its count outlives test databases (Redis)
