"""Row locks, in one place. Order: a step run before its run; a parent run before its children.

A run's row lock serializes what moves the run on: its status, its counters, the numbering of
its events, starting a join, `set`. A delivery of a step locks only its step run at first and
does the step's own work; it takes the run's lock when something needs the run as it is now,
at the latest with the one statement that writes its events and counters (`run_sync`). So the
steps of one run overlap all but that statement and the commit.

What the delivery read of the run before locking it may have aged: `run_lock` and `run_sync`
bring it up to date, adding this transaction's own counter changes to the current counts. If
the run's status changed meanwhile (it was cancelled, it failed), decisions made on the old read
are void, and they raise RunMovedOn: the caller rolls back and does it again with the run locked
from the start.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from django.db import DatabaseError, connection, transaction
from django.db.models import F

from workflows.engine.broadcast import broadcast
from workflows.engine.dispatch import dispatches_on_commit
from workflows.engine.events import event_message, events_buffer_open
from workflows.engine.prepared import PREPARED_ROWS_MAX, prepared
from workflows.engine.rows import COPY_FROM_ROWS, row_insert, rows_deferred
from workflows.models import Run, RunEvent, RunStatus, StepRun, Workflow, WorkflowVersion

# The parsed spec is cached per process (spec_for_version): skip decoding it under the lock.
_NOT_UNDER_LOCK = ("version__spec", "version__source", "result")
# Counts the engine changes by deltas: a transaction adds its changes to the current count.
COUNTERS = ("progress_done", "steps_busy")
# What run_lock and run_sync read back: what other transactions may have changed.
_CURRENT = ("status", "state", "event_seq", *COUNTERS)
# Raised by the database function chameleon_run_moved_on (migration 0004).
RUN_MOVED_ON_SQLSTATE = "CH001"


class RunMovedOn(Exception):
    """The run's status changed after this transaction read it; roll back and retry locked."""


@contextmanager
def run_locked(run_id) -> Iterator[Run]:
    """Hold the run's row lock for a transaction; what it records is written at the end.

    Every change to a run, its steps and its executions happens inside this block or
    step_run_locked.
    """
    with transaction.atomic():
        run = (
            Run.objects.select_for_update(of=("self",))
            .select_related("version", "workflow")
            .defer(*_NOT_UNDER_LOCK)
            .get(pk=run_id)
        )
        run_held(run)
        with recording(run):
            yield run


@contextmanager
def step_run_locked(
    run_id, step_run_id: int, *, lock_run: bool = False
) -> Iterator[tuple[Run, StepRun]]:
    """Lock a step run and read it with its run, which is locked later (run_lock, run_sync), or
    at once with `lock_run`.

    The hottest read of the engine (every delivery of a step starts with it), so it is one
    hand-written statement rather than the ORM's (whose SQL costs more to build than to run).
    """
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                prepared(_step_run_locked_sql(), "step_run_locked"),
                [step_run_id, _run_id_param(run_id)],
            )
            row = cursor.fetchone()
        if row is None:
            raise StepRun.DoesNotExist(f"step run {step_run_id} of run {run_id}")
        step_run, run, checksum, slug = _step_run_and_run(row)
        run.version = WorkflowVersion.from_db(
            connection.alias, ["id", "checksum"], [run.version_id, checksum]
        )
        run.workflow = Workflow.from_db(connection.alias, ["id", "slug"], [run.workflow_id, slug])
        step_run.run = run
        _note_read(run)
        if lock_run:
            run_lock(run)
        with recording(run):
            yield run, step_run


def run_held(run: Run) -> None:
    """Note that this transaction holds the run's lock (it locked the row, or created it)."""
    _note_read(run)
    run.__dict__["held"] = True


def _note_read(run: Run) -> None:
    """Remember what was read of the run, to see later what changed meanwhile and what we did."""
    run.__dict__["as_read"] = {field: getattr(run, field) for field in _CURRENT}


@contextmanager
def recording(run: Run) -> Iterator[None]:
    """Buffer the run's events and the engine's writes; send them at the end of the block, with
    the COMMIT if the block ends the transaction (its callers end theirs right after it)."""
    with rows_deferred():
        events_buffer_open(run)
        yield
        dispatches_on_commit(run)
        run_sync(run, commit=True)


def run_lock(run: Run) -> None:
    """Hold the run's row lock from here to the commit, with the run brought up to date."""
    if run.__dict__.get("held"):
        return
    with connection.cursor() as cursor:
        cursor.execute(prepared(_run_lock_sql(), "run_lock"), [_run_id_param(run.pk)])
        current = _converted(_CURRENT, cursor.fetchone())
    _adopt(run, current, written={})


def run_sync(run: Run, *, settled: bool = False, commit: bool = False) -> None:
    """Write the run's buffered events and counter changes, in one statement that also takes the
    run's row lock if this transaction does not hold it yet; bring the run up to date.

    Events are numbered here, under the lock, so `seq` is dense and in commit order: a reader
    polling `after=seq` never skips one. They are broadcast after commit.

    `settled`: the caller found nothing to settle (engine.progress.run_settle) from the counts as
    read; the write checks that against the current counts, or raises RunMovedOn. `commit`: the
    transaction ends here, and the write carries its COMMIT (config.db).
    """
    events, run.pending_events = run.pending_events, []
    as_read = run.__dict__["as_read"]
    deltas = {field: getattr(run, field) - as_read[field] for field in COUNTERS}
    if not events and not any(deltas.values()):
        return
    current = _run_write(run, events, deltas, settled=settled, commit=commit)
    _adopt(run, current, written=deltas)
    first = run.event_seq - len(events) + 1
    run_id = str(run.pk)
    messages = [event_message(run_id, seq, *event) for seq, event in enumerate(events, start=first)]
    if messages:
        transaction.on_commit(lambda: broadcast(run_id, messages))


def _adopt(run: Run, current: dict, *, written: dict) -> None:
    """Take the run's current values; keep this transaction's unwritten counter changes."""
    as_read = run.__dict__["as_read"]
    if not run.__dict__.get("held") and current["status"] != as_read["status"]:
        raise RunMovedOn(f"run {run.pk} went from {as_read['status']} to {current['status']}")
    for field in COUNTERS:
        unwritten = getattr(run, field) - as_read[field] - written.get(field, 0)
        setattr(run, field, current[field] + unwritten)
    run.status, run.state, run.event_seq = current["status"], current["state"], current["event_seq"]
    run.__dict__["as_read"] = current
    run.__dict__["held"] = True


def _run_write(run: Run, events: list, deltas: dict, *, settled: bool, commit: bool) -> dict:
    """UPDATE the run's counters and INSERT its events numbered from the new event_seq: in one
    statement on PostgreSQL, unless the events are so many that copying them in is cheaper.

    Not holding the run's lock yet (PostgreSQL), it writes only if the run's status is still the
    one read (the run may have ended meanwhile, its counters reset) and, if `settled`, if the
    current counts still need no settling; if not, it raises RunMovedOn and writes nothing.
    """
    if connection.vendor == "postgresql":
        guard = "" if run.__dict__.get("held") else "settled" if settled else "status"
        params = [len(events), deltas["progress_done"], deltas["steps_busy"], run.pk]
        params += [run.__dict__["as_read"]["status"]] if guard else []
        params += [deltas["progress_done"], deltas["steps_busy"], deltas["steps_busy"]] * (
            guard == "settled"
        )
        in_statement = events if len(events) < COPY_FROM_ROWS else []
        json = RunEvent._meta.get_field("payload")
        params += [len(in_statement)] if in_statement else []
        for number, (kind, payload, at) in enumerate(in_statement, start=1):
            params += [number, kind, json.get_db_prep_save(payload, connection), at]
        params += [run.pk] if guard else []
        sql = _run_write_sql(len(in_statement), guard)
        if len(in_statement) <= PREPARED_ROWS_MAX:
            sql = prepared(sql, f"run_write_{len(in_statement)}_{guard or 'held'}")
        with connection.cursor() as cursor:
            try:
                if commit and len(in_statement) == len(events) and _commits_early(connection):
                    connection.execute_and_commit(cursor, sql, params)
                else:
                    cursor.execute(sql, params)
            except DatabaseError as exc:
                if getattr(exc.__cause__, "sqlstate", None) == RUN_MOVED_ON_SQLSTATE:
                    raise RunMovedOn(str(exc.__cause__)) from None
                raise
            current = _converted(_CURRENT, cursor.fetchone())
    else:  # the embedded SQLite: no writes in a WITH, and no guard needed
        # Its transactions are IMMEDIATE (settings): each holds the database's write lock from
        # its start, so what it read of the run is still current.
        in_statement = []
        Run.objects.filter(pk=run.pk).update(
            event_seq=F("event_seq") + len(events),
            **{field: F(field) + delta for field, delta in deltas.items()},
        )
        current = Run.objects.values(*_CURRENT).get(pk=run.pk)
    if not in_statement:
        first = current["event_seq"] - len(events) + 1
        row_insert(
            *(
                RunEvent(run_id=run.pk, seq=seq, type=kind, payload=payload, at=at)
                for seq, (kind, payload, at) in enumerate(events, start=first)
            )
        )
    return current


def _commits_early(db) -> bool:
    """Whether the database backend can send a COMMIT with a statement (config.db can)."""
    return hasattr(db, "execute_and_commit")


@cache
def _run_write_sql(event_count: int, guard: str) -> str:
    runs, events = _table(Run), _table(RunEvent)
    returning = ", ".join(_CURRENT)
    where = "id = %s"
    if guard:
        where += " AND status = %s"
    if guard == "settled":  # what engine.progress.run_settle would change, with the new counts
        where += (
            " AND progress_done + %s < progress_total"
            f" AND NOT (status = '{RunStatus.RUNNING}' AND steps_busy + %s = 0)"
            f" AND NOT (status = '{RunStatus.WAITING}' AND steps_busy + %s > 0)"
        )
    sql = (
        f"WITH moved AS (UPDATE {runs} SET event_seq = event_seq + %s,"
        f" progress_done = progress_done + %s, steps_busy = steps_busy + %s"
        f" WHERE {where} RETURNING id, {returning})"
    )
    if event_count:
        rows = ", ".join(["(%s::integer, %s::varchar, %s::jsonb, %s::timestamptz)"] * event_count)
        sql += (
            f", written AS (INSERT INTO {events} (run_id, seq, type, payload, at)"
            f" SELECT moved.id, moved.event_seq - %s + new.n, new.type, new.payload, new.at"
            f" FROM moved, (VALUES {rows}) AS new (n, type, payload, at))"
        )
    if not guard:
        return f"{sql} SELECT {returning} FROM moved"
    # Raise rather than return no row: a COMMIT may follow in the same message (config.db).
    return (
        f"{sql} SELECT {', '.join(f'moved.{name}' for name in _CURRENT)} FROM (SELECT CASE"
        " WHEN EXISTS (SELECT FROM moved) THEN 0 ELSE chameleon_run_moved_on(%s) END) AS checked"
        " LEFT JOIN moved ON true"
    )


@cache
def _run_lock_sql() -> str:
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    return f"SELECT {', '.join(_CURRENT)} FROM {_table(Run)} WHERE id = %s{lock}"


def _run_id_param(run_id):
    """A run id as this database stores it (a uuid on PostgreSQL, 32 hex digits on SQLite)."""
    field = Run._meta.pk
    return field.get_db_prep_value(field.to_python(run_id), connection)


def _converted(names, row) -> dict:
    fields = [Run._meta.get_field(name) for name in names]
    return dict(zip(names, _instance_values(fields, row), strict=True))


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _step_run_fields():
    return StepRun._meta.concrete_fields


def _run_fields():
    return [field for field in Run._meta.concrete_fields if field.name not in _NOT_UNDER_LOCK]


@cache
def _step_run_locked_sql() -> str:
    quote = connection.ops.quote_name
    step_runs, runs = _table(StepRun), _table(Run)
    columns = [f"{step_runs}.{quote(field.column)}" for field in _step_run_fields()]
    columns += [f"{runs}.{quote(field.column)}" for field in _run_fields()]
    lock = f" FOR UPDATE OF {step_runs}" if connection.features.has_select_for_update_of else ""
    return (
        f"SELECT {', '.join(columns)}, v.checksum, w.slug FROM {step_runs}"
        f" JOIN {runs} ON {runs}.id = {step_runs}.run_id"
        f" JOIN {_table(WorkflowVersion)} v ON v.id = {runs}.version_id"
        f" JOIN {_table(Workflow)} w ON w.id = {runs}.workflow_id"
        f" WHERE {step_runs}.id = %s AND {step_runs}.run_id = %s{lock}"
    )


def _step_run_and_run(row) -> tuple[StepRun, Run, str, str]:
    step_run_fields, run_fields = _step_run_fields(), _run_fields()
    split = len(step_run_fields)
    step_run = _instance(StepRun, step_run_fields, row[:split])
    run = _instance(Run, run_fields, row[split : split + len(run_fields)])
    return step_run, run, *row[split + len(run_fields) :]


def _instance(model, fields, values):
    """What the ORM would build from these columns."""
    converted = _instance_values(fields, values)
    return model.from_db(connection.alias, [field.attname for field in fields], converted)


def _instance_values(fields, values) -> list:
    """The columns' values as the ORM would give them: Django's converters applied."""
    converted = []
    for field, value in zip(fields, values, strict=True):
        for converter, column in _converters(field):
            value = converter(value, column, connection)
        converted.append(value)
    return converted


@cache
def _converters(field) -> list:
    column = field.get_col(field.model._meta.db_table)
    converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
    return [(converter, column) for converter in converters]
