"""Row locks, in one place. Order: a run before its steps; a parent run before its children."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction

from workflows.engine.events import events_buffer_open, events_flush
from workflows.models import Run, StepRun

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
        with _recording(run):
            yield run


@contextmanager
def step_run_locked(run_id, step_run_id: int) -> Iterator[tuple[Run, StepRun]]:
    """run_locked, reading one of its step runs in the same statement."""
    with transaction.atomic():
        step_run = (
            StepRun.objects.select_for_update(of=("run",))
            .select_related("run__version", "run__workflow")
            .defer(*(f"run__{field}" for field in _NOT_UNDER_LOCK))
            .get(pk=step_run_id, run_id=run_id)
        )
        with _recording(step_run.run):
            yield step_run.run, step_run


@contextmanager
def _recording(run: Run) -> Iterator[None]:
    events_buffer_open(run)
    yield
    events_flush(run)
