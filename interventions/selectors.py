"""Reads of interventions that respect who may see them: those of runs the user may view (the
others do not exist for them), and who among those may act on one."""

from django.contrib.auth.models import Group
from django.db.models import Q

from accounts.roles import ADMIN, OPERATOR, PILOT, ROLE_PERMISSIONS
from config.errors import NotFound
from interventions.models import ACTIVE, Intervention, InterventionComment
from workflows.engine import api

_RELATED = ("assignee", "group", "claimed_by", "resolved_by")


def interventions_visible_to(user):
    return Intervention.objects.filter(run_id__in=api.runs_visible(user).values("pk"))


def interventions_queue(
    *, user, status: str | None = None, type: str | None = None, assignee_me: bool = False,
    group: str | None = None,
):  # fmt: skip
    """The user's visible queue (open and claimed ones unless `status` says), in queue order."""
    queue = interventions_visible_to(user).select_related(*_RELATED)
    queue = queue.filter(status=status) if status else queue.filter(status__in=ACTIVE)
    if type:
        queue = queue.filter(type=type)
    if assignee_me:
        queue = queue.filter(assignee=user)
    if group:
        queue = queue.filter(group__name=group)
    return queue


def intervention_get_visible(*, user, intervention_id) -> Intervention:
    """The intervention, or NotFound alike when it does not exist and when `user` may not view
    its run."""
    found = interventions_visible_to(user).select_related(*_RELATED).filter(pk=intervention_id)
    intervention = found.first()
    if intervention is None:
        raise NotFound(f"No intervention '{intervention_id}'.")
    return intervention


def governs(user) -> bool:
    """Operators and admins may act on any intervention they can see."""
    return user.is_superuser or user.groups.filter(name__in=(ADMIN, OPERATOR)).exists()


def may_act(user, intervention: Intervention) -> bool:
    """Whether `user` (who can see it) may claim, release, resolve or delegate it: its assignee,
    a member of its candidate group, or an operator/admin."""
    if intervention.assignee_id is not None and intervention.assignee_id == user.pk:
        return True
    if intervention.group_id is not None and user.groups.filter(pk=intervention.group_id).exists():
        return True
    return governs(user)


def interventions_actionable(queue, user):
    """`queue` narrowed to what `user` may act on: may_act as a filter, for lists."""
    if governs(user):
        return queue
    return queue.filter(Q(assignee_id=user.pk) | Q(group_id__in=user.groups.values("pk")))


def acts_on_any(user) -> bool:
    """Whether `user` has interventions to work: an operator/admin, a pilot, or someone an
    active one names (a viewer, by role, has none)."""
    if governs(user) or user.groups.filter(name=PILOT).exists():
        return True
    active = interventions_visible_to(user).filter(status__in=ACTIVE)
    return interventions_actionable(active, user).exists()


def group_named(name: str | None) -> Group | None:
    return Group.objects.filter(name=name).first() if name else None


def groups_offered(user) -> list[str]:
    """The candidate groups a queue filter offers `user`: their own, or, to those who govern,
    every group (roles are groups too, and not candidate groups)."""
    groups = Group.objects.exclude(name__in=ROLE_PERMISSIONS)
    if not governs(user):
        groups = groups.filter(pk__in=user.groups.values("pk"))
    return list(groups.order_by("name").values_list("name", flat=True))


def group_members(group: Group | None, *, limit: int) -> list[str]:
    """The usernames of the first `limit` members of `group`, by name."""
    if group is None:
        return []
    return list(group.user_set.order_by("username").values_list("username", flat=True)[:limit])


def intervention_comments(intervention: Intervention) -> list[InterventionComment]:
    """Its comments, oldest first, with their authors."""
    return list(intervention.comments.select_related("author"))


def interventions_active_of_run(*, run_id) -> list[tuple[int, object, str]]:
    """(step_run_id, id, type) of the run's open and claimed interventions, oldest first."""
    active = Intervention.objects.filter(run_id=run_id, status__in=ACTIVE).order_by("created_at")
    return list(active.values_list("step_run_id", "pk", "type"))
