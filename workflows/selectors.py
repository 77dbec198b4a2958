"""Reads that respect object permissions: what a user cannot view does not exist for them."""

from guardian.shortcuts import get_objects_for_user

from workflows.models import Run, Workflow


def workflows_visible_to(user):
    return get_objects_for_user(user, "workflows.view_workflow", klass=Workflow)


def workflows_with_permission(user, permission: str):
    return get_objects_for_user(user, f"workflows.{permission}", klass=Workflow)


def runs_visible_to(user):
    if user.is_superuser or user.has_perm("workflows.view_workflow"):
        return Run.objects.all()
    return Run.objects.filter(workflow__in=workflows_visible_to(user).values("pk"))
