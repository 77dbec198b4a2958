"""The unit of work: what one locked transaction of a run holds, and how it ends.

Every change to a run, its steps and its executions happens inside `run_unit` or `step_unit`.
The run's row lock serializes what moves the run on (its status, the numbering of its events,
starting a join, `set`, settling), so "is this step started yet?" has one answer, and the unique
(run, step_id) of RunStep backs it up. `run_unit` takes it at once. A step delivery
(`step_unit`) locks its step run and only reads the run: it does the step's own work, and takes
the run's lock (`Unit.lock_run`) when it must decide on something other transactions of the run
change, at the latest at the end, to number its events. So the steps of one run overlap all but
their last statements. Counters (steps busy, steps done, cost, budget held) change by deltas,
added to the current values when the lock is taken. If the run's status changed between the
read and the lock (it was cancelled), what was decided on the read is void: RunMovedOn is
raised, the transaction rolls back, and the caller does it again with `lock_run=True`.

Lock order: a step run (and the step it writes) before its run, a parent run before its
children; sweeps skip step runs another transaction holds, and run_abort skips the step runs
and steps that deliveries hold (they find the run ended and cancel their own).

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
from workflows.spec import WorkflowSpec, spec_for_version_id

_COUNTERS = ("progress_done", "steps_busy", "cost_usd", "reserved_usd")
# What other transactions of the run may change: read again when the lock is taken.
_CURRENT = ("status", "state", "event_seq", "degraded", *_COUNTERS)


class RunMovedOn(Exception):
    """The run's status changed after this transaction read it; roll back and redo it locked."""


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
    # step id -> its state, or None when not started; read once per transaction (under the
    # run's lock), then kept current by the planner as it starts and finishes steps.
    steps: dict[str, StepState | None] = field(default_factory=dict)
    locked: bool = False
    as_read: dict = field(default_factory=dict)
    # Step runs whose budget hold outlives their transition: a timed-out call still in flight.
    holds_kept: set[int] = field(default_factory=set)

    def __post_init__(self):
        self.as_read = {name: getattr(self.run, name) for name in _CURRENT}

    def lock_run(self) -> None:
        """Hold the run's row lock from here to the commit, with the run brought up to date:
        call before reading or deciding on what other transactions of the run change."""
        if self.locked:
            return
        run = self.run
        current = Run.objects.select_for_update(of=("self",)).values(*_CURRENT).get(pk=run.pk)
        if current["status"] != self.as_read["status"]:
            raise RunMovedOn(f"run {run.pk} went {self.as_read['status']} -> {current['status']}")
        for name in _COUNTERS:
            setattr(run, name, current[name] + getattr(run, name) - self.as_read[name])
        run.state, run.event_seq = current["state"], current["event_seq"]
        run.degraded = current["degraded"] or (run.degraded and not self.as_read["degraded"])
        self.locked = True

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
        run = Run.objects.select_for_update().get(pk=run_id)
        with _working(run, locked=True) as unit:
            yield unit


@contextmanager
def step_unit(run_id, step_run_id: int, *, lock_run=False) -> Iterator[tuple[Unit, StepRun]]:
    """Lock a step run and read its run (locked later, by Unit.lock_run, or at once)."""
    with transaction.atomic():
        step_run = (
            StepRun.objects.select_for_update(of=("self", "run") if lock_run else ("self",))
            .select_related("run", "run_step")
            .get(pk=step_run_id, run_id=run_id)
        )
        with _working(step_run.run, locked=lock_run) as unit:
            yield unit, step_run


@contextmanager
def new_run_unit(run: Run) -> Iterator[Unit]:
    """The unit of a run this transaction just created (and so holds)."""
    assert connection.in_atomic_block
    with _working(run, locked=True) as unit:
        yield unit


@contextmanager
def _working(run: Run, *, locked: bool) -> Iterator[Unit]:
    with rows_deferred():
        unit = Unit(run=run, spec=spec_for_version_id(run.version_id), locked=locked)
        yield unit
        _finish(unit)


def _finish(unit: Unit) -> None:
    """Number and write the unit's events with the run's counters; dispatch and broadcast on
    commit. Events are numbered under the run's lock, so `seq` is dense and in commit order: a
    reader polling `after=seq` never skips one."""
    run, events = unit.run, unit.events
    if events:
        unit.lock_run()
        first = run.event_seq + 1
        run.event_seq += len(events)
        row_insert(
            *(
                RunEvent(run_id=run.pk, seq=seq, type=kind, payload=payload, at=at)
                for seq, (kind, payload, at) in enumerate(events, start=first)
            )
        )
        row_update(run, ["event_seq", "degraded", *_COUNTERS])
        run_id = str(run.pk)
        messages = [
            event_message(run_id, seq, *event) for seq, event in enumerate(events, start=first)
        ]
    dispatch_on_commit(unit.dispatches)  # first: the next steps start before anyone is told
    if events:
        transaction.on_commit(lambda: broadcast(run_id, run.workflow_id, messages))
    unit.events, unit.dispatches = [], []
