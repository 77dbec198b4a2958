"""Behind PgBouncer in transaction mode: what DATABASE_POOLER=transaction sets, and why.

The session's PgBouncer (tests/conftest.py) hands each transaction to its server sessions in
turn, so anything a transaction leaves in its session is gone in the next one.
"""

import runpy
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from django.db import ProgrammingError, connection, transaction
from django.db.backends.postgresql.base import DatabaseWrapper

from tests.conftest import TRANSACTION_POOLING_OPTIONS, worker_environment

pytestmark = pytest.mark.django_db(transaction=True)

BASE_SETTINGS = Path(__file__).resolve().parent.parent / "config" / "settings" / "base.py"
QUERY = "SELECT %s::int, pg_backend_pid()"


def base_settings(monkeypatch, **env: str) -> dict:
    monkeypatch.setenv("DJANGO_ENV_FILE", "/dev/null")
    monkeypatch.delenv("DATABASE_POOLER", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(BASE_SETTINGS))


def server_pids(pgbouncer) -> set[int]:
    return {server["remote_pid"] for server in pgbouncer.show("SERVERS")}


def test_the_pooler_setting_turns_off_what_transaction_pooling_breaks(monkeypatch):
    url = "postgres://chameleon@pooler.internal:6432/chameleon"

    pooled = base_settings(monkeypatch, DATABASE_URL=url, DATABASE_POOLER="transaction")
    direct = base_settings(monkeypatch, DATABASE_URL=url)

    database = pooled["DATABASES"]["default"]
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert database["OPTIONS"] == TRANSACTION_POOLING_OPTIONS
    assert database["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert "DISABLE_SERVER_SIDE_CURSORS" not in direct["DATABASES"]["default"]
    assert direct["DATABASES"]["default"].get("OPTIONS", {}) == {}


@pytest.mark.parametrize(
    "env",
    [
        {"DATABASE_POOLER": "transactions"},
        {"DATABASE_POOLER": "transaction", "DATABASE_URL": "sqlite:///pooled.sqlite3"},
    ],
)
def test_the_pooler_setting_refuses_what_it_cannot_apply(monkeypatch, env):
    with pytest.raises(ImproperlyConfigured, match="DATABASE_POOLER"):
        base_settings(monkeypatch, **env)


def django_connection(pgbouncer, options: dict) -> DatabaseWrapper:
    """A Django connection of its own to the test database through PgBouncer."""
    settings_dict = {
        **connection.settings_dict,
        "HOST": pgbouncer.host,
        "PORT": pgbouncer.port,
        "OPTIONS": options,
    }
    return DatabaseWrapper(settings_dict, alias="through_pgbouncer")


def test_repeated_queries_in_many_transactions_work_with_the_pooler_settings(pgbouncer):
    pooled = django_connection(pgbouncer, TRANSACTION_POOLING_OPTIONS)
    try:
        with pooled.cursor() as cursor:
            rows = []
            for i in range(30):
                cursor.execute(QUERY, [i])
                rows.append(cursor.fetchone())
    finally:
        pooled.close()

    assert [value for value, _ in rows] == list(range(30))
    pids = {pid for _, pid in rows}
    assert len(pids) > 1  # the transactions ran in different server sessions
    assert pids <= server_pids(pgbouncer)  # and those are PgBouncer's


def test_without_them_psycopg_prepared_statements_are_lost_between_transactions(pgbouncer):
    """What the pooler settings prevent: a statement prepared in one server session and
    executed in the next transaction, which PgBouncer 1.18 has given another session."""
    prepared = django_connection(pgbouncer, {"server_side_binding": True, "prepare_threshold": 0})
    try:
        with (
            pytest.raises(ProgrammingError, match=r"prepared statement .* does not exist"),
            prepared.cursor() as cursor,
        ):
            for i in range(30):
                cursor.execute(QUERY, [i])
    finally:
        prepared.close()


def test_the_orm_in_many_transactions_on_one_connection_goes_through_pgbouncer(
    through_pgbouncer,
):
    pids = set()
    for i in range(20):
        with transaction.atomic():
            group = Group.objects.create(name=f"pooled-{i}")
            assert Group.objects.get(pk=group.pk).name == f"pooled-{i}"
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                pids.add(cursor.fetchone()[0])

    assert Group.objects.filter(name__startswith="pooled-").count() == 20
    assert len(pids) > 1
    assert pids <= server_pids(through_pgbouncer)
    clients = through_pgbouncer.show("CLIENTS")
    assert any(client["database"] == through_pgbouncer.dbname for client in clients)


def test_iterator_outside_a_transaction_needs_server_side_cursors_disabled(
    through_pgbouncer, monkeypatch
):
    Group.objects.bulk_create(Group(name=f"iterated-{i}") for i in range(5))
    groups = Group.objects.filter(name__startswith="iterated-").order_by("name")

    assert [g.name for g in groups.iterator(chunk_size=1)] == [f"iterated-{i}" for i in range(5)]

    # Django's default: a WITH HOLD cursor, fetched from in later transactions.
    monkeypatch.setitem(connection.settings_dict, "DISABLE_SERVER_SIDE_CURSORS", False)
    with pytest.raises(ProgrammingError, match=r'"_django_curs_\w+" does not exist'):
        list(groups.iterator(chunk_size=1))


def test_workers_reach_the_database_through_pgbouncer_with_the_pooler_setting(pgbouncer):
    pooled = worker_environment()
    direct = worker_environment(through_pgbouncer=False)

    url = urlsplit(pooled["DATABASE_URL"])
    assert (url.hostname, url.port, url.path) == (
        pgbouncer.host,
        pgbouncer.port,
        "/" + pgbouncer.dbname,
    )
    assert pooled["DATABASE_POOLER"] == "transaction"
    assert urlsplit(direct["DATABASE_URL"]).port != pgbouncer.port
    assert "DATABASE_POOLER" not in direct
