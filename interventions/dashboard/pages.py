"""What the queue and intervention pages show, read through the interventions' selectors and
the engine's door (the run), so the pages see exactly what the API lets the user see."""

from django.utils import timezone

from interventions import selectors
from interventions.dashboard.display import PRIORITY_BADGE, due_text
from interventions.models import Intervention, InterventionType, Status
from workflows.engine import api

QUEUE_PAGE = 100  # rows shown; the rest are counted, so a queue of 10,000 renders as fast
DELEGATES_OFFERED = 50
# What a row shows: not the documents (context, form, resolution), nor whole users.
_ROW_FIELDS = ("id", "workflow", "step_id", "type", "priority", "status", "prompt", "due_at",
               "assignee__username", "group__name", "claimed_by__username")  # fmt: skip
_ROW_USERS = ("assignee", "group", "claimed_by")


def queue_context(*, user, type=None, group=None, assignee_me=False) -> dict:
    """The first QUEUE_PAGE interventions `user` may act on, in queue order, and their count."""
    queue = selectors.interventions_queue(user=user, type=type, group=group,
                                          assignee_me=assignee_me)  # fmt: skip
    queue = selectors.interventions_actionable(queue, user)
    queue = queue.select_related(None).select_related(*_ROW_USERS).only(*_ROW_FIELDS)
    rows = list(queue[:QUEUE_PAGE])
    total = queue.count() if len(rows) == QUEUE_PAGE else len(rows)
    now = timezone.now()
    for row in rows:
        _shown(row, now)
    filtered = bool(type or group or assignee_me)
    return {
        "rows": rows,
        "total": total,
        "hidden": total - len(rows),
        "filtered": filtered,
        "viewer": not rows and not filtered and not selectors.acts_on_any(user),
    }


def queue_filter_choices(*, user) -> dict:
    return {"types": InterventionType.values, "groups": selectors.groups_offered(user)}


def intervention_context(*, user, intervention: Intervention) -> dict:
    """The intervention, what `user` may do to it now, and how it ended if it has."""
    _shown(intervention, timezone.now())
    may_act = selectors.may_act(user, intervention)
    claimer = intervention.claimed_by
    held_by_other = intervention.status == Status.CLAIMED and claimer not in (None, user)
    overrules = may_act and (not held_by_other or selectors.governs(user))
    active = intervention.is_active and may_act
    name = user.get_username()
    approved = any(approval["by"] == name for approval in intervention.approvals)
    # whom the delegate field suggests: the candidate group's members (the service checks)
    delegates = []
    if active and overrules:
        delegates = selectors.group_members(intervention.group, limit=DELEGATES_OFFERED)
    return {
        "item": intervention,
        "may_act": may_act,
        "can_claim": active and intervention.status == Status.OPEN,
        "can_release": active and intervention.status == Status.CLAIMED and overrules,
        "can_answer": active and not held_by_other and not approved,
        "approved_already": approved,
        "can_delegate": active and overrules,
        "held_by_other": held_by_other,
        "comments": selectors.intervention_comments(intervention),
        "delegates": delegates,
    }


def run_context(*, user, intervention: Intervention) -> dict:
    """The run's side of the page: its inputs, status and cost, and its steps' outputs so far."""
    run = api.run_visible(user=user, run_id=intervention.run_id, with_steps=True)
    steps = [step for step in run.steps_first if step.step_id != intervention.step_id]
    return {"run": run, "steps": steps}


def _shown(intervention: Intervention, now) -> None:
    intervention.due_text, intervention.overdue = due_text(intervention.due_at, now)
    intervention.badge = PRIORITY_BADGE.get(intervention.priority, "")
