"""Row locks, in one place. Order: a run before its steps; a parent run before its children."""

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

from django.db import connection, transaction

from workflows.engine.events import events_buffer_open, events_flush
from workflows.engine.rows import rows_deferred
from workflows.models import Run, StepRun, Workflow, WorkflowVersion

# The parsed spec is cached per process (spec_for_version): skip decoding it under the lock.
_NOT_UNDER_LOCK = ("version__spec", "version__source", "result")


@contextmanager
def run_locked(run_id) -> Iterator[Run]:
    """Hold the run's row lock for a transaction; the events it records are written at the end.

    Every change to a run, its steps and its executions happens inside this block.
    """
    with transaction.atomic():
        run = (
            Run.objects.select_for_update(of=("self",))
            .select_related("version", "workflow")
            .defer(*_NOT_UNDER_LOCK)
            .get(pk=run_id)
        )
        with recording(run):
            yield run


@contextmanager
def step_run_locked(run_id, step_run_id: int) -> Iterator[tuple[Run, StepRun]]:
    """run_locked, reading one of its step runs in the same statement.

    The hottest read of the engine (every delivery of a step starts with it), so it is one
    hand-written statement rather than the ORM's (whose SQL costs more to build than to run).
    """
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_step_run_locked_sql(), [step_run_id, Run._meta.pk.to_python(run_id)])
            row = cursor.fetchone()
        if row is None:
            raise StepRun.DoesNotExist(f"step run {step_run_id} of run {run_id}")
        step_run, run, checksum, slug = _step_run_and_run(row)
        run.version = WorkflowVersion.from_db(
            connection.alias, ["id", "checksum"], [run.version_id, checksum]
        )
        run.workflow = Workflow.from_db(connection.alias, ["id", "slug"], [run.workflow_id, slug])
        step_run.run = run
        with recording(run):
            yield run, step_run


@contextmanager
def recording(run: Run) -> Iterator[None]:
    """Buffer the run's events and the engine's writes; send them at the end of the block."""
    with rows_deferred():
        events_buffer_open(run)
        yield
        events_flush(run)


def _step_run_fields():
    return StepRun._meta.concrete_fields


def _run_fields():
    return [field for field in Run._meta.concrete_fields if field.name not in _NOT_UNDER_LOCK]


@cache
def _step_run_locked_sql() -> str:
    quote = connection.ops.quote_name
    step_runs, runs = quote(StepRun._meta.db_table), quote(Run._meta.db_table)
    columns = [f"{step_runs}.{quote(field.column)}" for field in _step_run_fields()]
    columns += [f"{runs}.{quote(field.column)}" for field in _run_fields()]
    lock = f" FOR UPDATE OF {runs}" if connection.features.has_select_for_update_of else ""
    return (
        f"SELECT {', '.join(columns)}, v.checksum, w.slug FROM {step_runs}"
        f" JOIN {runs} ON {runs}.id = {step_runs}.run_id"
        f" JOIN {quote(WorkflowVersion._meta.db_table)} v ON v.id = {runs}.version_id"
        f" JOIN {quote(Workflow._meta.db_table)} w ON w.id = {runs}.workflow_id"
        f" WHERE {step_runs}.id = %s AND {step_runs}.run_id = %s{lock}"
    )


def _step_run_and_run(row) -> tuple[StepRun, Run, str, str]:
    step_run_fields, run_fields = _step_run_fields(), _run_fields()
    split = len(step_run_fields)
    step_run = _instance(StepRun, step_run_fields, row[:split])
    run = _instance(Run, run_fields, row[split : split + len(run_fields)])
    return step_run, run, *row[split + len(run_fields) :]


def _instance(model, fields, values):
    """What the ORM would build from these columns: Django's converters, then from_db."""
    converted = []
    for field, value in zip(fields, values, strict=True):
        for converter, column in _converters(field):
            value = converter(value, column, connection)
        converted.append(value)
    return model.from_db(connection.alias, [field.attname for field in fields], converted)


@cache
def _converters(field) -> list:
    column = field.get_col(field.model._meta.db_table)
    converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
    return [(converter, column) for converter in converters]
