"""Run events a plug-in writes itself (an intervention opened, claimed, resolved), of the types
it registered with `event_type_register`: from inside the engine's transaction through the
writer handlers are given, or in a transaction of their own with `run_event_add`."""

import json
from collections.abc import Callable

from config.errors import NotFound
from workflows.engine.registry import event_types
from workflows.engine.unit import Unit, run_unit
from workflows.models import Run


def event_writer(unit: Unit) -> Callable[[str, dict], None]:
    """`write(type, payload)`: record a plug-in's event with the unit's work."""

    def write(event_type: str, payload: dict) -> None:
        if event_type not in event_types():
            raise ValueError(f"event type '{event_type}' is not registered")
        unit.event(event_type, json.loads(json.dumps(payload, default=str)))

    return write


def run_event_add(*, run_id, event_type: str, payload: dict) -> None:
    """Write one event of the run under its lock, in the caller's transaction if any (a run that
    has ended takes events too: what happened after its end is history as well)."""
    try:
        with run_unit(run_id) as unit:
            event_writer(unit)(event_type, payload)
    except Run.DoesNotExist:
        raise NotFound(f"No run '{run_id}'.") from None
