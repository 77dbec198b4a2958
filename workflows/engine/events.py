"""Run events: numbered under the run's lock, written in one INSERT per transaction, broadcast
after commit. The only place events are written."""

from django.db import connection, transaction
from django.utils import timezone

from workflows.engine.broadcast import broadcast
from workflows.engine.rows import row_insert, row_update
from workflows.models import Run, RunEvent


def events_buffer_open(run: Run) -> Run:
    """Let `run` take events. Done by engine.locks for locked runs and by run_start."""
    run.pending_events = []
    return run


def events_append(run: Run, events: list[tuple[str, dict]]) -> None:
    """Number `events` (type, payload) with the run's next sequence numbers and buffer them.

    Call inside a transaction while holding the run's row lock: the lock is what keeps `seq`
    dense and in commit order, so a reader polling `after=seq` never skips an event.
    """
    assert connection.in_atomic_block
    now = timezone.now()
    for event_type, payload in events:
        run.event_seq += 1
        run.pending_events.append(
            RunEvent(run=run, seq=run.event_seq, type=event_type, payload=payload, at=now)
        )


def events_flush(run: Run) -> None:
    """Write the buffered events and the run's counters; broadcast the events after commit.

    The counters are the event sequence, `progress_done` and `steps_busy`, which only move with
    an event (a step completes, is queued, finishes an attempt, waits, is cancelled), so one
    UPDATE here saves one per change.
    Call inside `engine.rows.rows_deferred` to batch the writes with the engine's others.
    """
    rows, run.pending_events = run.pending_events, []
    if not rows:
        return
    row_insert(*rows)
    row_update(run, ["event_seq", "progress_done", "steps_busy"])
    run_id, messages = str(run.pk), [event_message(row) for row in rows]
    transaction.on_commit(lambda: broadcast(run_id, messages))


def event_message(event: RunEvent) -> dict:
    return {
        "run": str(event.run_id),
        "seq": event.seq,
        "type": event.type,
        "payload": event.payload,
        "at": event.at.isoformat(),
    }
