"""engine.prepared: statements prepared once per connection, sent as EXECUTE."""

import pytest
from django.db import connection

from workflows.engine import prepared as prepared_module
from workflows.engine.prepared import prepared

pytestmark = pytest.mark.django_db(transaction=True)

SQL = "SELECT %s::integer + %s::integer"


def _prepared_on_server() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, statement FROM pg_prepared_statements")
        return dict(cursor.fetchall())


def _run(statement: str, params: list):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchone()[0]


def test_a_statement_is_prepared_once_and_then_executed_by_name():
    first = prepared(SQL, "sum")
    again = prepared(SQL, "sum")

    assert first == again
    assert first.startswith("EXECUTE chameleon_sum_")
    assert _run(first, [2, 3]) == 5
    name = first.split()[1].split("(")[0]
    on_server = _prepared_on_server()
    assert [other for other in on_server if other.startswith("chameleon_sum_")] == [name]
    assert "$1::integer + $2::integer" in on_server[name]


def test_a_new_connection_prepares_it_again():
    prepared(SQL, "sum")
    connection.close()

    statement = prepared(SQL, "sum")

    assert _run(statement, [4, 5]) == 9


def test_past_the_cap_statements_go_as_they_are(monkeypatch):
    monkeypatch.setattr(prepared_module, "PREPARED_MAX", 1)
    kept = prepared(SQL, "sum")

    other = "SELECT %s::integer * %s::integer"

    assert prepared(other, "product") == other
    assert _run(other, [4, 5]) == 20
    assert prepared(SQL, "sum") == kept


class Interrupted(Exception):
    """Stands in for Celery's soft time limit, raised by a signal at any point."""


def test_a_prepare_interrupted_after_the_server_took_it_does_not_block_the_next(monkeypatch):
    connection.ensure_connection()
    execute = type(connection.connection).execute

    def interrupted_after_it_ran(self, query, *args, **kwargs):
        result = execute(self, query, *args, **kwargs)
        if str(query).startswith("PREPARE"):
            raise Interrupted
        return result

    difference = "SELECT %s::integer - %s::integer"  # prepared by no other test
    monkeypatch.setattr(type(connection.connection), "execute", interrupted_after_it_ran)
    with pytest.raises(Interrupted):
        prepared(difference, "difference")
    monkeypatch.undo()

    statement = prepared(difference, "difference")

    assert _run(statement, [5, 2]) == 3
