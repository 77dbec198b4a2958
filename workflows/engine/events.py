"""Run events: buffered by the engine as it decides, numbered and written with the run's counters
when the transaction takes (or holds) the run's lock (engine.locks.run_sync), broadcast after
commit. The only place events are made."""

from django.utils import timezone

from workflows.models import Run


def events_buffer_open(run: Run) -> None:
    """Let `run` take events. Done by engine.locks.recording."""
    run.pending_events = []


def events_append(run: Run, events: list[tuple[str, dict]]) -> None:
    """Buffer `events` (type, payload); they get their sequence numbers when they are written."""
    now = timezone.now()
    run.pending_events.extend((event_type, payload, now) for event_type, payload in events)


def event_message(run_id: str, seq: int, event_type: str, payload: dict, at) -> dict:
    return {"run": run_id, "seq": seq, "type": event_type, "payload": payload, "at": at.isoformat()}
