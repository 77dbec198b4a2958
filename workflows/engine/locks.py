"""Row locks, in one place. Order: a run before its steps; a parent run before its children."""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import transaction

from workflows.engine.events import events_buffer_open, events_flush
from workflows.models import Run


@contextmanager
def run_locked(run_id) -> Iterator[Run]:
    """Hold the run's row lock for a transaction; the events it records are written at the end.

    Every change to a run, its steps and its executions happens inside this block.
    """
    with transaction.atomic():
        run = (
            Run.objects.select_for_update(of=("self",))
            .select_related("version", "workflow")
            # The parsed spec is cached per process (spec_for_version): skip decoding it again.
            .defer("version__spec", "version__source", "result")
            .get(pk=run_id)
        )
        events_buffer_open(run)
        yield run
        events_flush(run)
