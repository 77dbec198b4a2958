import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management import CommandError
from django.test import TransactionTestCase

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


def wait_for(predicate, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def wait_for_run(run: Run, timeout: float = 30.0, statuses=RUN_TERMINAL) -> Run:
    """Poll until the run reaches one of `statuses` (a hang guard, not a speed assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run.refresh_from_db()
        if run.status in statuses:
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run.pk} still {run.status} after {timeout}s")


# What config/settings/base.py sets for DATABASE_POOLER=transaction (tests/test_pgbouncer.py
# checks that it still does).
TRANSACTION_POOLING_OPTIONS = {"prepare_threshold": None, "server_side_binding": False}
PGBOUNCER_SERVER_SESSIONS = 3


class PgBouncer:
    """A `pgbouncer` process in transaction mode on a free 127.0.0.1 port, in front of the
    test database, with its ini, userlist, logfile and pidfile in a temporary directory."""

    def __init__(self, binary: str, db: dict):
        self.dir = Path(tempfile.mkdtemp(prefix="chameleon-pgbouncer-"))
        self.host, self.port = "127.0.0.1", _free_port()
        self.dbname, self.user = db["NAME"], db["USER"] or "postgres"
        server = f"host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432} dbname={self.dbname}"
        if db["PASSWORD"]:
            server += f" password={db['PASSWORD']}"
        self.logfile = self.dir / "pgbouncer.log"
        ini = self.dir / "pgbouncer.ini"
        ini.write_text(
            f"""[databases]
{self.dbname} = {server}

[pgbouncer]
listen_addr = {self.host}
listen_port = {self.port}
unix_socket_dir =
pool_mode = transaction
; Transactions go to the server sessions in turn (not to the one used last), so code that
; relies on a session outliving its transaction fails every time, not by chance; idle
; sessions are kept, so there are always several to turn over.
server_round_robin = 1
server_idle_timeout = 0
auth_type = trust
auth_file = {self.dir / "userlist.txt"}
admin_users = {self.user}
logfile = {self.logfile}
pidfile = {self.dir / "pgbouncer.pid"}
"""
        )
        (self.dir / "userlist.txt").write_text(f'"{self.user}" ""\n')
        command = [binary, str(ini)]
        if os.geteuid() == 0:  # pgbouncer refuses to run as root; it reads its ini first
            os.chown(self.dir, pwd.getpwnam("nobody").pw_uid, -1)
            command[1:1] = ["-u", "nobody"]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self._wait_until_up()
        self.open_server_sessions(PGBOUNCER_SERVER_SESSIONS)

    def connect(self, dbname: str | None = None, **kwargs) -> psycopg.Connection:
        return psycopg.connect(
            host=self.host, port=self.port, dbname=dbname or self.dbname, user=self.user, **kwargs
        )

    def admin(self, command: str) -> None:
        """A command on the admin console, e.g. `DISABLE <db>` (simple query protocol only)."""
        with self.connect("pgbouncer", autocommit=True, cursor_factory=psycopg.ClientCursor) as c:
            c.execute(command)

    def show(self, what: str) -> list[dict]:
        """`SHOW <what>` on the admin console (which speaks only the simple query protocol)."""
        with self.connect("pgbouncer", autocommit=True, cursor_factory=psycopg.ClientCursor) as c:
            cursor = c.execute(f"SHOW {what}")
            names = [column.name for column in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def _wait_until_up(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                self.show("VERSION")
                return
            except psycopg.OperationalError:
                time.sleep(0.05)
        log = self.logfile.read_text() if self.logfile.exists() else "(no log)"
        self.stop()
        raise RuntimeError(f"pgbouncer did not start on {self.host}:{self.port}:\n{log}")

    def open_server_sessions(self, count: int) -> None:
        """Open `count` server sessions at once, so transactions have sessions to rotate over."""
        clients = [self.connect() for _ in range(count)]
        for client in clients:
            client.execute("SELECT 1")  # each holds its server session until it commits
        for client in clients:
            client.commit()  # a client leaving mid-transaction would take its session along
            client.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


_pgbouncer: PgBouncer | None = None


def pgbouncer_running() -> PgBouncer:
    """The session's PgBouncer, started on first use (after django_db_setup, whose teardown
    stops it). Without a pgbouncer binary: skip, or fail when CI=true."""
    global _pgbouncer
    if _pgbouncer is None:
        binary = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
        if binary is None:
            message = "pgbouncer is not installed (apt-get install pgbouncer; .ci/run does)"
            if os.environ.get("CI") == "true":
                pytest.fail(message, pytrace=False)
            pytest.skip(message)
        _pgbouncer = PgBouncer(binary, settings.DATABASES["default"])
    return _pgbouncer


FLUSH_ATTEMPTS = 3


@pytest.fixture(scope="session", autouse=True)
def _flush_tried_again_after_a_deadlock():
    """A transactional test ends with a flush: one TRUNCATE of every table, locking them one by
    one. A live worker's sweep (or the browser tests' server) reading two of them in one
    transaction meanwhile may deadlock with it, and PostgreSQL may end the flush: it then rolled
    back whole, truncating nothing, so it is tried again."""
    flush = TransactionTestCase._fixture_teardown

    def flush_tried_again(test_case):
        for attempt in range(1, FLUSH_ATTEMPTS + 1):
            try:
                return flush(test_case)
            except CommandError as error:  # flush's, caused by Django's, caused by psycopg's
                if not _caused_by_deadlock(error) or attempt == FLUSH_ATTEMPTS:
                    raise

    TransactionTestCase._fixture_teardown = flush_tried_again
    yield
    TransactionTestCase._fixture_teardown = flush


def _caused_by_deadlock(error: BaseException | None) -> bool:
    while error is not None:
        if isinstance(error, psycopg.errors.DeadlockDetected):
            return True
        error = error.__cause__
    return False


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup):
    """pytest-django's, and PgBouncer stopped before the test database is dropped (its server
    sessions would keep DROP DATABASE from running)."""
    global _pgbouncer
    yield
    if _pgbouncer is not None:
        _pgbouncer.stop()
        _pgbouncer = None


@pytest.fixture
def pgbouncer(django_db_setup) -> PgBouncer:
    """The session's PgBouncer, with several server sessions open again (other tests may end
    server sessions, and transactions need several to rotate over)."""
    running = pgbouncer_running()
    running.open_server_sessions(PGBOUNCER_SERVER_SESSIONS)
    return running


@pytest.fixture
def through_pgbouncer(transactional_db, pgbouncer):
    """This process's Django connections, in every thread, reach the test database through
    PgBouncer for the test, with the settings of DATABASE_POOLER=transaction."""
    from django.db import connection

    shared = connection.settings_dict  # the dict every thread's connection is made from
    saved = dict(shared)
    connection.close()
    shared.update(
        HOST=pgbouncer.host,
        PORT=pgbouncer.port,
        OPTIONS={**shared["OPTIONS"], **TRANSACTION_POOLING_OPTIONS},
        DISABLE_SERVER_SIDE_CURSORS=True,
    )
    yield pgbouncer
    connection.close()
    shared.clear()
    shared.update(saved)


class WorkerProcess:
    """A real `celery worker` subprocess on the test database (through PgBouncer unless told
    otherwise) and the test Redis."""

    def __init__(
        self,
        name: str,
        *,
        concurrency: int = 2,
        beat: bool = False,
        tmp_path=None,
        through_pgbouncer: bool = True,
    ):
        env = worker_environment(through_pgbouncer=through_pgbouncer)
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


class SupervisedWorker:
    """`./chameleon worker` as a subprocess: a Celery worker it starts again when it fails.
    SIGINT is let through, as from a terminal (a background job would ignore it)."""

    def __init__(self, name: str, *args: str, env: dict[str, str]):
        command = [str(ROOT / "chameleon"), "worker", "--hostname", f"{name}@%h"]
        command += ["--loglevel", "WARNING", "--without-mingle", "--without-gossip", *args]
        self.process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )

    def celery_pid(self) -> int | None:
        """The Celery worker it runs now (none while it waits to start one again)."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        with contextlib.suppress(OSError):  # either has exited meanwhile
            for pid in map(int, children.read_text().split()):
                if b"celery" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return pid
        return None

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Send `signum` to the script; return its exit status (SIGKILL all after 20 s)."""
        celery = self.celery_pid()
        if self.process.poll() is None:
            self.process.send_signal(signum)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            if celery is not None:  # in a process group of its own (job control)
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(celery, signal.SIGKILL)
            return self.process.wait(timeout=10)


def worker_environment(*, through_pgbouncer: bool = True) -> dict[str, str]:
    """The environment of a worker subprocess: the test database, through the session's
    PgBouncer in transaction mode with DATABASE_POOLER=transaction, or directly."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "DATABASE_URL": _test_database_url(),
        "REDIS_URL": settings.REDIS_URL,
    }
    env.pop("DATABASE_POOLER", None)
    if through_pgbouncer:
        bouncer = pgbouncer_running()
        env["DATABASE_URL"] = _test_database_url(bouncer.host, bouncer.port)
        env["DATABASE_POOLER"] = "transaction"
    return env


def _test_database_url(host: str | None = None, port: int | None = None) -> str:
    db = settings.DATABASES["default"]
    return f"postgres://{db['USER']}@{host or db['HOST']}:{port or db['PORT']}/{db['NAME']}"


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
    """Two prefork processes and beat (sweeps every second), shared by a test module, on the
    test database through PgBouncer.

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


@pytest.fixture(scope="module")
def asgi_server():
    """`127.0.0.1:<port>` of the ASGI app (HTTP, SSE, WebSockets) on uvicorn in a thread."""
    from tests.live import asgi_served

    with asgi_served() as address:
        yield address
