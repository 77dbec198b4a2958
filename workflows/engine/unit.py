"""The unit of work: what one locked transaction of a run holds, and how it ends.

Every change to a run, its steps and its executions happens inside `run_unit` or `step_unit`,
which lock the run's row for the whole transaction. That lock serializes what moves the run on
(its status, counters, the numbering of its events, starting a join, `set`), so "is this step
started yet?" has one answer, and the unique (run, step_id) of RunStep backs it up. Lock order:
a step run before its run (step_unit takes both in one statement), a parent run before its
children; sweeps skip rows another transaction holds.

The engine's row writes wait in a batch (engine.rows) and reach PostgreSQL together before the
next read or at the end. The unit gathers the run's events and the step runs to dispatch; at
the end it numbers and writes the events with the run's counters, and registers the dispatches
and the broadcast to run after commit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from workflows.engine.broadcast import broadcast
from workflows.engine.dispatch import dispatch_on_commit
from workflows.engine.events import event_message
from workflows.engine.rows import row_insert, row_update, rows_deferred
from workflows.models import Run, RunEvent, StepRun
from workflows.spec import WorkflowSpec, spec_for_version

# The parsed spec is cached per process (spec_for_version): skip decoding it under the lock.
_NOT_UNDER_LOCK = ("version__spec", "version__source", "result")
_RUN_COUNTERS = ["event_seq", "progress_done", "steps_busy", "cost_usd"]


@dataclass(frozen=True)
class StepState:
    """What the planner knows of a step of the run (a RunStep row): its status, and the steps a
    gate routed it to (None: all its dependents)."""

    status: str
    routes: tuple[str, ...] | None = None


@dataclass
class Unit:
    run: Run
    spec: WorkflowSpec
    events: list[tuple[str, dict, object]] = field(default_factory=list)
    dispatches: list[tuple[StepRun, float]] = field(default_factory=list)
    # step id -> its state, or None when not started; read once per transaction, then kept
    # current by the planner as it starts and finishes steps.
    steps: dict[str, StepState | None] = field(default_factory=dict)

    def event(self, event_type: str, payload: dict) -> None:
        """Record an event of the run (see engine.events for the types and their payloads)."""
        self.events.append((event_type, payload, timezone.now()))

    def dispatch(self, step_run: StepRun, timeout_s: float) -> None:
        """Send the step run to a worker once the transaction commits."""
        self.dispatches.append((step_run, timeout_s))


@contextmanager
def run_unit(run_id) -> Iterator[Unit]:
    """Lock the run for a transaction and yield its unit of work."""
    with transaction.atomic():
        run = (
            Run.objects.select_for_update(of=("self",))
            .select_related("version", "workflow")
            .defer(*_NOT_UNDER_LOCK)
            .get(pk=run_id)
        )
        with _working(run) as unit:
            yield unit


@contextmanager
def step_unit(run_id, step_run_id: int) -> Iterator[tuple[Unit, StepRun]]:
    """Lock a step run and its run (one statement) for a transaction."""
    with transaction.atomic():
        step_run = (
            StepRun.objects.select_for_update(of=("self", "run"))
            .select_related("run__version", "run__workflow")
            .defer(*(f"run__{name}" for name in _NOT_UNDER_LOCK))
            .get(pk=step_run_id, run_id=run_id)
        )
        with _working(step_run.run) as unit:
            yield unit, step_run


@contextmanager
def new_run_unit(run: Run) -> Iterator[Unit]:
    """The unit of a run this transaction just created (and so holds)."""
    assert connection.in_atomic_block
    with _working(run) as unit:
        yield unit


@contextmanager
def _working(run: Run) -> Iterator[Unit]:
    with rows_deferred():
        unit = Unit(run=run, spec=spec_for_version(run.version))
        yield unit
        _finish(unit)


def _finish(unit: Unit) -> None:
    """Number and write the unit's events with the run's counters; dispatch and broadcast on
    commit. Events are numbered under the run's lock, so `seq` is dense and in commit order: a
    reader polling `after=seq` never skips one."""
    run, events = unit.run, unit.events
    if events:
        first = run.event_seq + 1
        run.event_seq += len(events)
        row_insert(
            *(
                RunEvent(run_id=run.pk, seq=seq, type=kind, payload=payload, at=at)
                for seq, (kind, payload, at) in enumerate(events, start=first)
            )
        )
        row_update(run, _RUN_COUNTERS)
        run_id = str(run.pk)
        messages = [
            event_message(run_id, seq, *event) for seq, event in enumerate(events, start=first)
        ]
        transaction.on_commit(lambda: broadcast(run_id, messages))
    dispatch_on_commit(unit.dispatches)
    unit.events, unit.dispatches = [], []
