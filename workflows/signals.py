"""Audit entries for object permissions on workflows, however they are granted or revoked (the
services, the admin's object permission pages, django-guardian's shortcuts)."""

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from accounts.audit import audit_record, request_user
from workflows.models import WorkflowGroupObjectPermission, WorkflowUserObjectPermission


def _audited(action: str):
    def handler(sender, instance, **kwargs):
        if action == "permission.grant" and not kwargs.get("created"):
            return
        holder = getattr(instance, "user", None) or getattr(instance, "group", None)
        change = {"permission": instance.permission.codename, "to": str(holder)}
        with transaction.atomic():
            audit_record(actor=request_user(), action=action, obj=instance.content_object,
                         after=change if action == "permission.grant" else None,
                         before=change if action == "permission.revoke" else None)  # fmt: skip

    return handler


def connect() -> None:
    for model in (WorkflowUserObjectPermission, WorkflowGroupObjectPermission):
        post_save.connect(_audited("permission.grant"), sender=model, weak=False,
                          dispatch_uid=f"audit-grant-{model.__name__}")  # fmt: skip
        post_delete.connect(_audited("permission.revoke"), sender=model, weak=False,
                            dispatch_uid=f"audit-revoke-{model.__name__}")  # fmt: skip
