"""Server-side prepared statements for the engine's hottest statements.

Django binds parameters on the client and sends each query as text, which the server parses and
plans anew every time: for the engine's short statements (lock a step run with its run, write a
run's counters and events) planning costs more than running them. Here such a statement is
PREPAREd once per connection and sent as `EXECUTE name(...)`, still bound on the client, so it
can ride in the same message as other statements (engine.rows, config.db) like any other.
Other databases get the statement as it is.
"""

import re
from collections.abc import Iterator
from functools import cache
from itertools import count

from django.db import DEFAULT_DB_ALIAS, connection, connections

# Statements prepared per connection, at most (each keeps its plan in the server's memory);
# beyond this, statements are sent as they are.
PREPARED_MAX = 64
# Statements that write more rows than this (one statement per row count) are sent as they are.
PREPARED_ROWS_MAX = 8


def prepared(sql: str, label: str) -> str:
    """What to send for `sql` (%s placeholders, none of them quoted): `EXECUTE name(%s, ...)`
    with the statement prepared on this connection, or `sql` itself.

    `label` names it in logs, e.g. "insert_workflows_runevent".
    """
    if connection.vendor != "postgresql":
        return sql
    names, attempts = _names()
    name = names.get(sql)
    if name is None:
        if len(names) >= PREPARED_MAX:
            return sql
        # A name per attempt: one interrupted after the server prepared it is never sent again.
        name = f"chameleon_{label}_{next(attempts)}"
        # Straight to psycopg: not a statement of the transaction (PREPARE is not transactional)
        # and not one to carry engine.rows' waiting writes.
        with connection.wrap_database_errors:
            connection.connection.execute(f"PREPARE {name} AS {_numbered(sql)}")
        names[sql] = name
    return _execute_sql(name, sql.count("%s"))


def _names() -> tuple[dict[str, str], Iterator[int]]:
    """This connection's prepared statements by SQL, and its attempts' numbers; a new connection
    starts with none."""
    db = connections[DEFAULT_DB_ALIAS]  # the thread's own connection (`connection` is a proxy)
    db.ensure_connection()
    held = db.__dict__.get("engine_prepared")
    if held is None or held[0] is not db.connection:
        held = db.__dict__["engine_prepared"] = (db.connection, {}, count())
    return held[1], held[2]


def _numbered(sql: str) -> str:
    """%s placeholders as $1, $2, ... (what PREPARE takes)."""
    assert "%%" not in sql, "prepared statements take no literal %"
    numbers = iter(range(1, sql.count("%s") + 1))
    return re.sub("%s", lambda _: f"${next(numbers)}", sql)


@cache
def _execute_sql(name: str, count: int) -> str:
    return f"EXECUTE {name}({', '.join(['%s'] * count)})" if count else f"EXECUTE {name}"
