import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import Group

from workflows.engine.sweeps import steps_execute_due, steps_wake_due
from workflows.models import RUN_TERMINAL, Run
from workflows.services import workflow_create

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def make_user(django_user_model):
    counter = iter(range(1, 10_000))

    def make(role: str | None = None, *, superuser: bool = False, username: str | None = None):
        name = username or f"{role or 'user'}{next(counter)}"
        if superuser:
            user = django_user_model.objects.create_superuser(name, password="pw")
        else:
            user = django_user_model.objects.create_user(name, password="pw")
        if role:
            user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def operator(make_user):
    return make_user("operator")


@pytest.fixture
def make_workflow(operator):
    def make(source, *, owner=None):
        return workflow_create(source=source, created_by=owner or operator)

    return make


def drain(max_rounds: int = 500) -> None:
    """Execute due step runs in this process until nothing is left to do (unit tests only)."""
    for _ in range(max_rounds):
        if not steps_execute_due(worker="drain") and not steps_wake_due():
            return
    raise AssertionError("drain did not settle")


@pytest.fixture(name="drain")
def drain_fixture():
    return drain


def wait_for_run(run: Run, timeout: float = 30.0, statuses=RUN_TERMINAL) -> Run:
    """Poll until the run reaches one of `statuses` (a hang guard, not a speed assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status in statuses:
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run.pk} still {run.status} after {timeout}s")


class WorkerProcess:
    """A real `celery worker` subprocess on the test database and the test Redis."""

    def __init__(self, name: str, *, concurrency: int = 2, beat: bool = False, tmp_path=None):
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "DATABASE_URL": _test_database_url(),
            "REDIS_URL": settings.REDIS_URL,
        }
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            str(concurrency),
            "--hostname",
            f"{name}@%h",
            "--loglevel",
            "WARNING",
            "--without-mingle",
            "--without-gossip",
        ]
        if beat:
            command += ["--beat", "--schedule", str(tmp_path / f"{name}-beat")]
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
        _wait_for_worker(name)

    def kill(self) -> None:
        """SIGKILL the whole worker: parent and pool children, no chance to clean up."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def _test_database_url() -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def _wait_for_worker(name: str, timeout: float = 30.0) -> None:
    from config.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=0.5) or []
        if any(name in host for reply in replies for host in reply):
            return
    raise AssertionError(f"worker {name} did not start")


@pytest.fixture(scope="session")
def _clean_broker():
    redis.Redis.from_url(settings.REDIS_URL).flushdb()


@pytest.fixture(scope="module")
def celery_worker(django_db_setup, _clean_broker, tmp_path_factory):
    """Two prefork processes and beat (sweeps every second), shared by a test module.

    Module scope, so modules that start and kill their own workers never compete with it.
    """
    from config.celery import app

    app.control.purge()  # messages left by earlier modules' runs, whose rows are gone
    beat_dir = tmp_path_factory.mktemp("beat")
    worker = WorkerProcess("shared", concurrency=2, beat=True, tmp_path=beat_dir)
    yield worker
    worker.stop()


@pytest.fixture
def http_server():
    """(base_url, recorder) of a local HTTP server that records what the tools send."""
    from tests.httpserver import serve

    server, recorder = serve()
    yield f"http://127.0.0.1:{server.server_address[1]}", recorder
    server.shutdown()
