"""Write-behind for the engine's rows: the INSERTs and UPDATEs of a locked transaction reach
PostgreSQL together, in one round trip, just before the next statement or the commit.

Moving a run on by one step changes a handful of rows (close the execution, finish the step,
queue the next one, the events, the run's counters). Sent one at a time through the ORM they
cost more than the step itself: a round trip each, and on a small machine Django building the
SQL costs as much again. Here each write is the statement the ORM would send, with its values
taken at the call, so the batch means exactly what the calls meant in their order. New rows take
their ids from per-process blocks of their sequences, so an INSERT needs no RETURNING.

Any other statement on the connection (a read, a queryset update, a savepoint) first sends what
is waiting, so everything in the transaction sees the engine's writes. Other databases (SQLite,
the embedded mode) get each write at once, through the ORM.
"""

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Model
from django.db.models.fields import AutoFieldMixin

ID_BLOCK = 100
# From this many new rows of one table, COPY them: a multi-row INSERT's placeholders cost more to
# fill in (client-side) than the rows cost to send, and a run can plan thousands of steps at once.
COPY_FROM_ROWS = 200


class _Batch:
    def __init__(self):
        self.savepoints = len(connection.savepoint_ids)
        self.inserts: dict[tuple[type[Model], tuple[str, ...]], list[list]] = {}
        self.updates: list[tuple[str, list]] = []

    def flush_first(self, execute, sql, params, many, context):
        """Run before every statement on the connection: send what waits, with the statement
        itself when it can ride in the same round trip."""
        statements = self._take()
        cursor = context["cursor"]
        positional = params is None or isinstance(params, list | tuple)
        if statements and not many and positional and _batchable(cursor):
            waiting = len(statements)
            statements.append((sql, params))
            result = execute(_joined(statements), None, many, context)
            for _ in range(waiting):  # on to the result of the caller's statement
                cursor.nextset()
            return result
        if statements:
            with connection.cursor() as batch_cursor:
                batch_cursor.execute(_joined(statements))
        return execute(sql, params, many, context)

    def flush(self) -> None:
        statements = self._take()
        if statements:
            with connection.cursor() as cursor:
                cursor.execute(_joined(statements))

    def _take(self) -> list[tuple[str, list]]:
        """The waiting statements; big groups of new rows are copied in first, on their own."""
        inserts, self.inserts = self.inserts, {}
        statements = []
        # Rows of a table go in one multi-row INSERT, before every UPDATE (an UPDATE may touch a
        # row inserted in this batch). Grouping reorders INSERTs of different tables, which is
        # safe because Django makes PostgreSQL's foreign keys DEFERRABLE INITIALLY DEFERRED.
        for (model, columns), rows in inserts.items():
            if len(rows) >= COPY_FROM_ROWS:
                _copy(f"COPY {_table_columns(model, columns)} FROM STDIN", rows)
                continue
            sql = _insert_sql(model, columns, len(rows))
            statements.append((sql, [value for row in rows for value in row]))
        statements += self.updates
        self.updates = []
        return statements


def _table_columns(model: type[Model], columns: tuple[str, ...]) -> str:
    quote = connection.ops.quote_name
    return f"{quote(model._meta.db_table)} ({', '.join(quote(column) for column in columns)})"


@cache
def _insert_sql(model: type[Model], columns: tuple[str, ...], row_count: int) -> str:
    row = "(" + ", ".join(["%s"] * len(columns)) + ")"
    return f"INSERT INTO {_table_columns(model, columns)} VALUES {', '.join([row] * row_count)}"


def _copy(sql: str, rows: list[list]) -> None:
    # Straight to psycopg's cursor: COPY bypasses Django's execute wrappers (and this batch's).
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(row)


def _joined(statements: list[tuple[str, list | None]]) -> str:
    """Several statements as one query, to send with no parameters. Django's psycopg cursors
    bind parameters on the client and send the simple query protocol, which allows several
    statements. Each is bound on its own: psycopg caches how it parses short statements, not
    the long joined one."""
    binder = connections[DEFAULT_DB_ALIAS].connection.cursor()
    return ";\n".join(binder.mogrify(sql, params) for sql, params in statements)


def _batchable(cursor) -> bool:
    """A client-side cursor (not a server-side one, as QuerySet.iterator() uses)."""
    return isinstance(cursor.cursor, psycopg.ClientCursor)


def _batches() -> list[_Batch]:
    # On the thread's own connection object: `connection` is a proxy that all threads share.
    return connections[DEFAULT_DB_ALIAS].__dict__.setdefault("engine_batches", [])


def _batch() -> _Batch | None:
    """The innermost batch, if writes made here may wait in it: not inside a savepoint opened
    after it, whose rollback must take the writes with it."""
    batches = _batches()
    if batches and batches[-1].savepoints == len(connection.savepoint_ids):
        return batches[-1]
    return None


@contextmanager
def rows_deferred() -> Iterator[None]:
    """Defer row_insert/row_update in this block; call inside the transaction to be batched.

    What is waiting goes out before any other statement and at the end of the block; if the
    block raises, it is dropped with the transaction that would have held it.
    """
    if connection.vendor != "postgresql":
        yield
        return
    batch = _Batch()
    batches = _batches()
    batches.append(batch)
    try:
        with connection.execute_wrapper(batch.flush_first):
            yield
            batch.flush()
    finally:
        batches.remove(batch)


def row_insert(*instances: Model) -> None:
    """INSERT the instances (like `save(force_insert=True)`), giving each an id when it has none."""
    batch = _batch()
    if batch is None:
        for instance in instances:
            instance.save(force_insert=True)
        return
    without_ids: dict[str, list[Model]] = {}
    for instance in instances:
        if instance.pk is None and isinstance(instance._meta.pk, AutoFieldMixin):
            without_ids.setdefault(instance._meta.db_table, []).append(instance)
    for table, group in without_ids.items():
        for instance, new_id in zip(group, _ids_take(table, len(group)), strict=True):
            instance.pk = new_id
    for instance in instances:
        meta = instance._meta
        fields = meta.local_concrete_fields
        values = _db_values(instance, fields, adding=True)
        columns = tuple(field.column for field in fields)
        batch.inserts.setdefault((type(instance), columns), []).append(values)
        instance._state.adding = False
        instance._state.db = connection.alias


def row_update(instance: Model, fields: list[str]) -> None:
    """UPDATE the named fields of the instance's row (like `save(update_fields=fields)`)."""
    batch = _batch()
    if batch is None:
        instance.save(update_fields=fields)
        return
    meta = instance._meta
    model_fields = [meta.get_field(name) for name in fields]
    values = _db_values(instance, model_fields, adding=False)
    sql = _update_sql(type(instance), tuple(fields))
    batch.updates.append((sql, [*values, meta.pk.get_db_prep_save(instance.pk, connection)]))


@cache
def _update_sql(model: type[Model], fields: tuple[str, ...]) -> str:
    meta, quote = model._meta, connection.ops.quote_name
    columns = [meta.get_field(name).column for name in fields]
    assignments = ", ".join(f"{quote(column)} = %s" for column in columns)
    return f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"


def _db_values(instance: Model, fields, *, adding: bool) -> list:
    db = connections[DEFAULT_DB_ALIAS]  # `connection` is a proxy, costly when asked per field
    return [field.get_db_prep_save(field.pre_save(instance, adding), db) for field in fields]


_id_blocks: dict[str, list[int]] = {}
_id_blocks_pid: list[int] = []
_id_blocks_guard = threading.Lock()


def _ids_take(table: str, count: int) -> list[int]:
    """`count` new ids of the table's sequence, taken ID_BLOCK (or more) at a time by each
    process (a forked child starts afresh: its parent's ids are the parent's). Ids stay unique,
    not in order, as long as nothing resets the sequence under a running process."""
    with _id_blocks_guard:
        return _ids_take_locked(table, count)


def _ids_take_locked(table: str, count: int) -> list[int]:
    if _id_blocks_pid != [os.getpid()]:
        _id_blocks.clear()
        _id_blocks_pid[:] = [os.getpid()]
    block = _id_blocks.setdefault(table, [])
    if len(block) < count:
        # Straight to psycopg: through Django's cursor the waiting batch would be sent first.
        connection.ensure_connection()
        rows = connection.connection.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            [table, max(ID_BLOCK, count - len(block))],
        ).fetchall()
        block[:0] = sorted((row[0] for row in rows), reverse=True)
    taken = block[-count:]
    del block[-count:]
    return taken[::-1]
