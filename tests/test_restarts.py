"""Runs outlive restarts of a Redis (without persistence, so the broker's messages are lost) and
of a PostgreSQL of the test's own, and move on within seconds of each one's return rather than
at the 60 s resend; no step is lost or done twice."""

import contextlib
import glob
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
import redis

from tests.conftest import ROOT, SupervisedWorker, _free_port

RUNS, STEPS = 6, 150
RECOVERY_BOUND_S = 15  # far below the 60 s after which a lost message is sent again
CHAIN = "slug: chain\nsteps:\n" + "".join(f"  - {{id: s{n}, tool: noop}}\n" for n in range(STEPS))
START_RUNS = f"""
from workflows.engine.api import run_start
from workflows.loading import default_owner
from workflows.services import workflow_create

owner = default_owner()
workflow = workflow_create(source={CHAIN!r}, created_by=owner)
for _ in range({RUNS}):
    run_start(workflow=workflow, inputs={{}}, started_by=owner)
"""
PROGRESS = """
SELECT r.id, r.status, count(s.id) FILTER (WHERE s.status = 'SUCCEEDED')
FROM workflows_run r LEFT JOIN workflows_steprun s ON s.run_id = r.id GROUP BY r.id
"""


def _required(what: str, found: str | None, hint: str) -> str:
    """`found`, else skip (or fail when CI=true, where everything must run)."""
    if found is None:
        message = f"{what} is not installed ({hint})"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return found


class OwnPostgres:
    """A PostgreSQL cluster in a temporary directory on a free 127.0.0.1 port, run by an
    unprivileged user when the tests run as root (PostgreSQL refuses root)."""

    def __init__(self, bin_dir: Path):
        self.bin_dir, self.port = bin_dir, _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="chameleon-postgres-"))
        self.data, self.log = self.dir / "data", self.dir / "postgres.log"
        self.user = None
        if os.geteuid() == 0:
            self.user = pwd.getpwnam("postgres" if _has_user("postgres") else "nobody")
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        self._run("initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "--no-sync")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\nfsync = off\nfull_page_writes = off\n"
            )
        self.pg_ctl("start")
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def pg_ctl(self, action: str, *args: str) -> None:
        self._run("pg_ctl", action, "-D", self.data, "-l", self.log, "-w", *args)

    def progress(self) -> dict[str, tuple[str, int]] | None:
        """{run id: (status, steps succeeded)}, or None while the server cannot be reached."""
        try:
            with psycopg.connect(self.url, connect_timeout=2) as conn:
                return {str(run): (status, done) for run, status, done in conn.execute(PROGRESS)}
        except psycopg.OperationalError:
            return None

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # it is not running
            self.pg_ctl("stop", "-m", "immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def _run(self, binary: str, *args) -> None:
        kwargs = {"user": self.user.pw_uid, "group": self.user.pw_gid} if self.user else {}
        subprocess.run(
            [self.bin_dir / binary, *map(str, args)],
            cwd=self.dir,
            check=True,
            capture_output=True,
            timeout=60,
            **kwargs,
        )


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


class OwnRedis:
    """A Redis on a free 127.0.0.1 port that keeps nothing on disk: a restart empties it."""

    def __init__(self, binary: str):
        self.binary, self.port = binary, _free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="chameleon-redis-"))
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        client = redis.Redis.from_url(self.url)
        for _ in range(200):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def restart(self) -> None:
        self.stop()
        self.start()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def _version(path: str) -> list[int]:
    return [int(number) for number in re.findall(r"\d+", path)]


@pytest.fixture
def own_postgres():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version)
    found = found or [shutil.which("initdb")]
    initdb = _required("PostgreSQL's initdb", found[-1], "apt-get install postgresql")
    server = OwnPostgres(Path(initdb).parent)
    yield server
    server.stop()


@pytest.fixture
def own_redis():
    binary = _required("redis-server", shutil.which("redis-server"), "apt-get install redis")
    server = OwnRedis(binary)
    yield server
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture
def environment(own_postgres, own_redis):
    """What the worker and the commands here run with: the own services, and the production
    delay before a dispatched step run is sent again."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": own_postgres.url,
        "REDIS_URL": own_redis.url,
        "CHAMELEON_REDISPATCH_AFTER_S": "60",
    }
    for name in ("DATABASE_POOLER", "CELERY_BROKER_URL"):
        env.pop(name, None)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=120)
    return env


@pytest.fixture
def worker(environment, tmp_path):
    """Supervised, as production's workers must be: in about 1 of 4 of these Redis restarts,
    kombu ends the worker ("'NoneType' object has no attribute 'hostname'", README)."""
    args = ["--pool", "prefork", "--concurrency", "4", "--beat", "--schedule", tmp_path / "beat"]
    worker = SupervisedWorker("restarts", *map(str, args), env=environment)
    yield worker
    worker.stop()


def seconds_until_every_run_moves_on(postgres: OwnPostgres, since: float) -> float:
    """Seconds from `since` until every unfinished run has done a step more than when the
    server first answers here."""
    before = None
    while time.monotonic() - since < RECOVERY_BOUND_S:
        progress = postgres.progress()
        if before is None:
            before = progress
        elif progress is not None and all(
            status == "COMPLETED" or done > before[run][1]
            for run, (status, done) in progress.items()
        ):
            return time.monotonic() - since
        time.sleep(0.05)
    raise AssertionError(f"a run made no progress for {RECOVERY_BOUND_S}s: {progress}")


def test_runs_move_on_within_seconds_of_redis_and_postgres_restarting(
    own_postgres, own_redis, environment, worker
):
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", START_RUNS],
        cwd=ROOT,
        env=environment,
        check=True,
        timeout=60,
    )
    deadline = time.monotonic() + 30
    while sum(done for _, done in (own_postgres.progress() or {}).values()) < RUNS * 10:
        assert time.monotonic() < deadline, "the worker did not start the runs"
        time.sleep(0.05)

    own_redis.restart()  # its queue and the messages the worker had reserved are gone
    after_redis = seconds_until_every_run_moves_on(own_postgres, time.monotonic())
    own_postgres.pg_ctl("restart", "-m", "fast")
    postgres_back = time.monotonic()
    after_postgres = seconds_until_every_run_moves_on(own_postgres, postgres_back)
    while {status for status, _ in (own_postgres.progress() or {}).values()} != {"COMPLETED"}:
        assert time.monotonic() - postgres_back < 20, "the runs did not complete"
        time.sleep(0.1)
    print(f"every run moved on {after_redis:.1f}s after Redis restarted, ", end="")
    print(f"{after_postgres:.1f}s after PostgreSQL restarted")

    with psycopg.connect(own_postgres.url) as conn:
        steps = conn.execute(
            "SELECT run_id, count(*), count(DISTINCT step_id), max(attempt)"
            " FROM workflows_steprun WHERE status = 'SUCCEEDED' GROUP BY run_id"
        ).fetchall()
        all_step_runs = conn.execute("SELECT count(*) FROM workflows_steprun").fetchone()[0]
    assert [row[1:] for row in steps] == [(STEPS, STEPS, 1)] * RUNS
    assert all_step_runs == RUNS * STEPS  # one step run per step: none lost, none doubled
