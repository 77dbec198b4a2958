"""Interventions past their due time: the beat sweep applies each one's `on_expiry` (approve,
reject, skip, abort) as the system's answer, in one transaction with the EXPIRED transition, its
`intervention.expired` event, its audit entry and its notifications.

Without `on_expiry` a due time is a target only: the intervention stays open, overdue (its
breach warning went out), because expiring it with nothing to do would strand its step, which
waits on it and nothing else.

Expiry races answers on the intervention's row lock (the services' lock order: intervention,
step run, run): a row an answer holds is skipped and found RESOLVED by the next sweep; an answer
that waited for the expiry's lock finds it EXPIRED and gets 409.
"""

import logging

from django.db import transaction
from django.utils import timezone

from config.errors import Conflict
from interventions import notifications
from interventions.decisions import step_answered
from interventions.lifecycle import intervention_transition
from interventions.models import ACTIVE, Intervention, InterventionType, OnExpiry, Status
from workflows.engine import api

logger = logging.getLogger(__name__)
BATCH = 200


def interventions_expire_due() -> int:
    """Expire the interventions past due that say what to do then; return how many."""
    due = Intervention.objects.filter(status__in=ACTIVE, due_at__lte=timezone.now()).exclude(
        on_expiry=""
    )
    expired = 0
    for intervention_id in due.order_by("due_at").values_list("pk", flat=True)[:BATCH]:
        try:
            expired += intervention_expire(intervention_id=intervention_id)
        except Exception:
            logger.exception("expiring intervention %s failed", intervention_id)
    return expired


def intervention_expire(*, intervention_id) -> bool:
    """Expire it if it is still active and due (False: answered meanwhile, or held by an
    answer in progress). One whose step no longer waits on it, or whose run has ended, is
    cancelled instead."""
    try:
        return _expired(intervention_id)
    except Conflict as exc:  # from the engine: the step moved on or the run ended
        _cancelled(intervention_id, reason=exc.message)
        return False


@transaction.atomic
def _expired(intervention_id) -> bool:
    intervention = _due_locked(intervention_id)
    if intervention is None:
        return False
    if intervention.wait_ref:
        api.step_run_lock(intervention.step_run_id)  # before the run (the event), as the engine
    decision = expiry_decision(intervention)
    comment = f"no answer by {intervention.due_at.isoformat()}"
    intervention.resolution = {"decision": decision, "data": None, "output": None,
                               "comment": comment}  # fmt: skip
    intervention.resolved_at = timezone.now()
    intervention_transition(
        intervention, Status.EXPIRED, act="expire", actor=None,
        fields=["resolution", "resolved_at"], on_expiry=intervention.on_expiry, decision=decision,
    )  # fmt: skip
    step_answered(intervention, intervention.resolution, by="")
    notifications.notifications_record(intervention, event="expire")
    return True


def expiry_decision(intervention: Intervention) -> str:
    """The answer its `on_expiry` gives: a correction approved is confirmed as proposed."""
    correction = intervention.type == InterventionType.CORRECTION
    if intervention.on_expiry == OnExpiry.APPROVE and correction:
        return "confirm"
    return intervention.on_expiry


@transaction.atomic
def _cancelled(intervention_id, *, reason: str) -> None:
    intervention = _due_locked(intervention_id)
    if intervention is not None:
        intervention_transition(intervention, Status.CANCELLED, act="cancel", actor=None,
                                reason=reason)  # fmt: skip


def _due_locked(intervention_id) -> Intervention | None:
    return (
        Intervention.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("resolved_by")
        .filter(pk=intervention_id, status__in=ACTIVE, due_at__lte=timezone.now())
        .exclude(on_expiry="")
        .first()
    )
