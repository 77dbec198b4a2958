"""The one way an intervention changes: a transition checked against models.TRANSITIONS, saved
with its fields, audited and written as a run event, all in the caller's transaction.

Acts and what they leave: the audit entry `intervention.<act>` and the run event in EVENTS, whose
payload has intervention (id), type, step and by (a username, '' for the system) beside what
EVENTS says. `approve` is one approval of several (`approvals: N`), the last one resolves.
"""

from collections.abc import Callable

from django.db import connection

from accounts.audit import audit_record
from config.errors import Conflict
from interventions.models import TRANSITIONS, Intervention
from workflows.engine import api

EVENTS = {
    "open": ("intervention.opened", "priority, group, assignee, due_at"),
    "claim": ("intervention.claimed", ""),
    "release": ("intervention.released", ""),
    "approve": ("intervention.approved", "approvals (so far), required"),
    "resolve": ("intervention.resolved", "decision"),
    "delegate": ("intervention.delegated", "to (a username)"),
    "expire": ("intervention.expired", "on_expiry, decision (the answer it gave the step)"),
    "cancel": ("intervention.cancelled", "reason"),
}
EVENT_PAYLOAD = "intervention (id), type, step, by (a username, '' for the system)"


def intervention_transition(
    intervention: Intervention, target: str, *, act: str, actor, fields=(), event=None, **payload
) -> None:
    """Move the (locked) intervention to status `target`, saving `fields` set by the caller; or
    raise Conflict, saying why, and change nothing."""
    assert connection.in_atomic_block, "inside the act's transaction, the row locked"
    source = intervention.status
    if target not in TRANSITIONS[source]:
        raise stale(intervention, target)
    intervention.status = target
    intervention.save(update_fields=["status", *fields])
    intervention_recorded(
        intervention, act, actor=actor, before={"status": source}, event=event, **payload
    )


def intervention_recorded(
    intervention: Intervention, act: str, *, actor, before=None, event: Callable | None = None,
    **payload,
) -> None:  # fmt: skip
    """Audit the act and write its run event: with `event`, the engine's writer of the
    transaction in progress (a handler's), else under the run's lock (api.run_event_add)."""
    by = actor.get_username() if actor is not None else ""
    audit_record(actor=actor, action=f"intervention.{act}", obj=intervention, before=before,
                 after={"status": intervention.status, **payload})  # fmt: skip
    event_type = EVENTS[act][0]
    body = {"intervention": str(intervention.pk), "type": intervention.type,
            "step": intervention.step_id, "by": by, **payload}  # fmt: skip
    if event is not None:
        event(event_type, body)
    else:
        api.run_event_add(run_id=intervention.run_id, event_type=event_type, payload=body)


def stale(intervention: Intervention, requested: str) -> Conflict:
    """The 409 for an act the intervention's status no longer allows."""
    status = intervention.status
    if TRANSITIONS[status]:
        message = f"Intervention {intervention.pk} is {status}; it cannot become {requested}."
        code = "invalid_transition"
    else:
        who = intervention.resolved_by.get_username() if intervention.resolved_by else ""
        message = f"Intervention {intervention.pk} is already {status}" + (
            f" (by {who})." if who else "."
        )
        code = f"intervention_{status.lower()}"
    return Conflict(message, code=code, details={"status": status, "requested": requested})
