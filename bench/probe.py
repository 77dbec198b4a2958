"""Worker-side probe for `run.py --profile`: where the time of one task goes.

Loaded into a worker with `-I bench.probe` (never by the timed passes). For every task it records
the task's wall time and, inside it, the time spent
  - in each SQL statement (counted and labelled by verb and table),
  - committing, opening database connections, and running after-commit hooks (the engine's
    event broadcast and task dispatch run there),
and adds the sums to a Redis hash the driver reads. It wraps Django's database methods to time
them; it changes nothing the engine or Celery decide.
"""

import os
import re
import time
from collections import Counter

import redis
from celery.signals import task_postrun, task_prerun
from django.db import connection
from django.db.backends.base.base import BaseDatabaseWrapper

PROBE_KEY = "bench:probe"
_TABLE = re.compile(r'(?:FROM|INTO|UPDATE)\s+"?(\w+)"?', re.IGNORECASE)
_client = redis.Redis.from_url(os.environ["REDIS_URL"])
_task: dict = {}


def statement_label(sql: str) -> str:
    """What a message sent to the database held: each statement by verb and table (BEGIN and
    COMMIT as themselves)."""
    parts = [part.strip() for part in sql.split(";\n") if part.strip()]
    return "SQL " + " + ".join(_statement_label(part) for part in parts)


def _statement_label(sql: str) -> str:
    verb = sql.split(None, 1)[0].upper()
    table = _TABLE.search(sql)
    label = f"{verb} {table.group(1) if table else ''}".strip()
    if verb == "SELECT" and "FOR UPDATE" in sql:
        label += " FOR UPDATE"
    return label


def _record(label: str, seconds: float) -> None:
    if "count" in _task:
        _task["count"][label] += 1
        _task["seconds"][label] += seconds


def _timed_statement(execute, sql, params, many, context):
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        _record(statement_label(sql), time.perf_counter() - started)


def _timed_method(name: str, label: str) -> None:
    original = getattr(BaseDatabaseWrapper, name)

    def timed(self, *args, **kwargs):
        started = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            _record(label, time.perf_counter() - started)

    setattr(BaseDatabaseWrapper, name, timed)


_timed_method("connect", "database connect")
_timed_method("commit", "COMMIT")
_timed_method("run_and_clear_commit_hooks", "after-commit hooks (broadcast, dispatch)")


@task_prerun.connect
def _task_started(task=None, **_):
    _task.update(name=task.name, started=time.perf_counter(), count=Counter(), seconds=Counter())
    _task["wrapper"] = connection.execute_wrapper(_timed_statement)
    _task["wrapper"].__enter__()


@task_postrun.connect
def _task_finished(task=None, **_):
    if "wrapper" not in _task:
        return
    _task.pop("wrapper").__exit__(None, None, None)
    name, wall = _task["name"], time.perf_counter() - _task["started"]
    pipe = _client.pipeline(transaction=False)
    pipe.hincrby(PROBE_KEY, f"{name}|tasks", 1)
    pipe.hincrbyfloat(PROBE_KEY, f"{name}|wall", wall)
    for label, count in _task.pop("count").items():
        pipe.hincrby(PROBE_KEY, f"{name}|n|{label}", count)
        pipe.hincrbyfloat(PROBE_KEY, f"{name}|s|{label}", _task["seconds"][label])
    pipe.execute()
