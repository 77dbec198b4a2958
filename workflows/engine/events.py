"""Append run events and broadcast them after commit. The only place events are written."""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import connection, transaction
from django.utils import timezone

from workflows.models import Run, RunEvent


def events_append(run: Run, events: list[tuple[str, dict]]) -> list[RunEvent]:
    """Write `events` (type, payload) with the run's next sequence numbers.

    Call inside a transaction while holding the run's row lock: the lock is what keeps `seq`
    dense and in commit order, so a reader polling `after=seq` never skips an event.
    """
    assert connection.in_atomic_block
    if not events:
        return []
    now = timezone.now()
    rows = []
    for event_type, payload in events:
        run.event_seq += 1
        rows.append(RunEvent(run=run, seq=run.event_seq, type=event_type, payload=payload, at=now))
    RunEvent.objects.bulk_create(rows)
    Run.objects.filter(pk=run.pk).update(event_seq=run.event_seq)
    messages = [event_message(row) for row in rows]
    transaction.on_commit(lambda: _broadcast(str(run.pk), messages))
    return rows


def event_message(event: RunEvent) -> dict:
    return {
        "run": str(event.run_id),
        "seq": event.seq,
        "type": event.type,
        "payload": event.payload,
        "at": event.at.isoformat(),
    }


def run_group(run_id: str) -> str:
    return f"run.{run_id}"


RUNS_GROUP = "runs"


def _broadcast(run_id: str, messages: list[dict]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "run.events", "events": messages}
    send = async_to_sync(layer.group_send)
    send(run_group(run_id), message)
    send(RUNS_GROUP, message)
