"""What people do to interventions: claim, release, resolve, delegate, comment. Each is one
transaction that locks the intervention first and checks it is still in the state the caller
saw (409 with the reason otherwise). Who may act at all is the caller's check
(selectors.may_act); who holds a claim is checked here.

Lock order: the intervention, then, resolving, its step run (api.step_run_lock), then its run
(the run event, then the engine's service): a step run before its run, as in the engine, so a
late outcome of the same step run cannot deadlock with an answer.
"""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from config.errors import Conflict, InvalidInput
from interventions import metrics
from interventions.decisions import resolution_checked, step_answered
from interventions.lifecycle import intervention_recorded, intervention_transition, stale
from interventions.models import Intervention, InterventionComment, Status
from interventions.selectors import governs, interventions_visible_to
from workflows.engine import api


def _locked(intervention_id) -> Intervention:
    return (
        Intervention.objects.select_for_update(of=("self",))
        .select_related("resolved_by", "claimed_by")
        .get(pk=intervention_id)
    )


def _claim_held(intervention: Intervention, user, *, overrule: bool = False) -> None:
    """A claimed intervention is its claimer's until released (operators may overrule)."""
    claimer = intervention.claimed_by  # None: the claimer's account was deleted
    if intervention.status != Status.CLAIMED or claimer in (None, user):
        return
    if overrule and governs(user):
        return
    raise Conflict(
        f"Intervention {intervention.pk} is claimed by {claimer.get_username()}.",
        code="claimed", details={"claimed_by": claimer.get_username()},
    )  # fmt: skip


@transaction.atomic
def intervention_claim(*, intervention_id, user) -> Intervention:
    """Claim it for `user` (claiming again what one holds changes nothing)."""
    intervention = _locked(intervention_id)
    if intervention.status == Status.CLAIMED and intervention.claimed_by == user:
        return intervention
    _claim_held(intervention, user)
    intervention.claimed_by, intervention.claimed_at = user, timezone.now()
    intervention_transition(intervention, Status.CLAIMED, act="claim", actor=user,
                            fields=["claimed_by", "claimed_at"])  # fmt: skip
    return intervention


@transaction.atomic
def intervention_release(*, intervention_id, user) -> Intervention:
    """Give a claimed intervention back to the queue: its claimer, or an operator."""
    intervention = _locked(intervention_id)
    _claim_held(intervention, user, overrule=True)
    intervention.claimed_by = intervention.claimed_at = None
    intervention_transition(intervention, Status.OPEN, act="release", actor=user,
                            fields=["claimed_by", "claimed_at"])  # fmt: skip
    return intervention


def intervention_resolve(
    *, intervention_id, user, decision=None, data=None, output=None, comment: str = ""
) -> Intervention:
    """Answer it, and move its step at once (dispatched at commit). Resolving an open one
    claims it in the same act; an approval that needs several approvers records this one and
    stays open until the last (one reject decides). A second, late or concurrent answer gets
    Conflict and changes nothing."""
    try:
        return _resolved(intervention_id, user, decision, data, output, comment)
    except Conflict as exc:
        if exc.code == "run_finished":  # its run ended while this answer held it
            _cancel_left_open(intervention_id)
        raise


@transaction.atomic
def _resolved(intervention_id, user, decision, data, output, comment) -> Intervention:
    intervention = _locked(intervention_id)
    if intervention.wait_ref:
        api.step_run_lock(intervention.step_run_id)  # before the run (the event), as the engine
    if not intervention.is_active:
        raise stale(intervention, Status.RESOLVED)
    _claim_held(intervention, user)
    resolution = resolution_checked(
        intervention, decision=decision, data=data, output=output, comment=comment
    )
    now = timezone.now()
    if resolution["decision"] == "approve" and intervention.approvals_required > 1:
        if any(approval["by"] == user.get_username() for approval in intervention.approvals):
            raise Conflict("You have approved this already.", code="already_approved")
        intervention.approvals = [*intervention.approvals,
                                  {"by": user.get_username(), "at": now.isoformat()}]  # fmt: skip
        if len(intervention.approvals) < intervention.approvals_required:
            return _approved_in_part(intervention, user)
    intervention.resolution = resolution
    intervention.resolved_by, intervention.resolved_at = user, now
    fields = ["approvals", "resolution", "resolved_by", "resolved_at"]
    if intervention.status == Status.OPEN:
        intervention.claimed_by, intervention.claimed_at = user, now
        fields += ["claimed_by", "claimed_at"]
    intervention_transition(intervention, Status.RESOLVED, act="resolve", actor=user,
                            fields=fields, decision=resolution["decision"])  # fmt: skip
    step_answered(intervention, resolution, by=user.get_username())
    waited = (now - intervention.created_at).total_seconds()
    transaction.on_commit(lambda: metrics.resolved(intervention.type, waited))
    return intervention


def _approved_in_part(intervention: Intervention, user) -> Intervention:
    """One approval of several: recorded; the intervention goes back to the queue for the next."""
    progress = {"approvals": len(intervention.approvals),
                "required": intervention.approvals_required}  # fmt: skip
    if intervention.status == Status.CLAIMED:
        intervention.claimed_by = intervention.claimed_at = None
        fields = ["approvals", "claimed_by", "claimed_at"]
        intervention_transition(intervention, Status.OPEN, act="approve", actor=user,
                                fields=fields, **progress)  # fmt: skip
    else:
        intervention.save(update_fields=["approvals"])
        intervention_recorded(intervention, "approve", actor=user, **progress)
    return intervention


@transaction.atomic
def _cancel_left_open(intervention_id) -> None:
    intervention = _locked(intervention_id)
    if intervention.is_active:
        intervention_transition(intervention, Status.CANCELLED, act="cancel", actor=None,
                                reason="its run ended")  # fmt: skip


@transaction.atomic
def intervention_delegate(*, intervention_id, user, to: str) -> Intervention:
    """Make `to` (a username, who must be able to see it) its assignee; a claim is released."""
    delegate = get_user_model().objects.filter(username=to).first()
    intervention = _locked(intervention_id)
    if (
        delegate is None
        or not interventions_visible_to(delegate).filter(pk=intervention.pk).exists()
    ):
        message = f"No user '{to}' who may see this intervention."
        raise InvalidInput(message, details={"to": message})
    if not intervention.is_active:
        raise stale(intervention, Status.OPEN)
    _claim_held(intervention, user, overrule=True)
    before = intervention.assignee.get_username() if intervention.assignee else None
    intervention.assignee = delegate
    if intervention.status == Status.CLAIMED:
        intervention.claimed_by = intervention.claimed_at = None
        intervention_transition(intervention, Status.OPEN, act="delegate", actor=user,
                                fields=["assignee", "claimed_by", "claimed_at"], to=to)  # fmt: skip
    else:
        intervention.save(update_fields=["assignee"])
        intervention_recorded(intervention, "delegate", actor=user,
                              before={"assignee": before}, to=to)  # fmt: skip
    return intervention


def intervention_comment(*, intervention: Intervention, user, text: str) -> InterventionComment:
    return InterventionComment.objects.create(intervention=intervention, author=user, text=text)
