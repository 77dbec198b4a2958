"""The raw Celery baseline: a no-op task that commits one PostgreSQL row and does nothing else.

Workers load it with `-I bench.raw_tasks`. It runs on the same Celery app and settings as the
engine's tasks (acks_late, ignore_result, prefetch 1, JSON), so the only difference measured is
what the engine does per step.
"""

from celery import shared_task
from django.db import connection
from pydantic import BaseModel

from workflows.tools.registry import tool

TABLE = "bench_raw_row"


def raw_table_reset() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {TABLE} "
            "(id bigserial PRIMARY KEY, n int, at timestamptz DEFAULT clock_timestamp())"
        )
        cursor.execute(f"TRUNCATE {TABLE}")


def raw_rows() -> tuple[int, object]:
    """(number of rows, time the last one was committed)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), max(at) FROM {TABLE}")
        return cursor.fetchone()


@shared_task(name="bench.raw_noop")
def raw_noop(n: int) -> None:
    # Django runs in autocommit mode here, so this INSERT is its own committed transaction.
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {TABLE} (n) VALUES (%s)", [n])


class _NoParams(BaseModel):
    pass


@tool("bench.leased_noop", _NoParams)
def leased_noop(params, context):
    """noop, but not marked pure: the engine runs it under a lease like any tool with effects."""
    return None
