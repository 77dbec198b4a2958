"""Close a user's dashboard sockets when what they may view may have changed, so no socket keeps
the access its handshake found: every socket also joins its user's group (`user.<pk>`), and a
`user.close` message there closes it; the page reconnects and the handshake decides again
(refused, or the groups of the new access).

A user's sockets close when they sign out, a session of theirs is deleted, they are saved
inactive, with a new password or a changed superuser flag, or deleted, and on any change of
their permissions: object permissions on workflows (their own or a group's), global
permissions (their own or a group's), group membership, a group deleted. A session that
expires is the consumer's to close (at its expiry date). Each close is sent after commit.
"""

from django.contrib.auth import SESSION_KEY, get_user_model, user_logged_out
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete, pre_save

from workflows.engine.broadcast import groups_send
from workflows.models import WorkflowGroupObjectPermission, WorkflowUserObjectPermission

CLOSE = {"type": "user.close"}
ACCESS_FIELDS = ("password", "is_active", "is_superuser")
_CHANGED = "_live_access_changed"


def user_group(user_pk) -> str:
    return f"user.{user_pk}"


def user_sockets_close(user_pks) -> None:
    """Once the current transaction commits, close the dashboard sockets of these users."""
    groups = sorted({user_group(pk) for pk in user_pks if pk is not None})
    if groups:
        transaction.on_commit(lambda: groups_send(groups, CLOSE))


def _members(group_pks) -> list[int]:
    users = get_user_model().objects.filter(groups__in=list(group_pks))
    return list(users.values_list("pk", flat=True).distinct())


def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        user_sockets_close([user.pk])


def _session_deleted(sender, instance, **kwargs):
    user_sockets_close([instance.get_decoded().get(SESSION_KEY)])


def _user_saving(sender, instance, update_fields=None, **kwargs):
    """Note whether the save changes a field the handshake's decision reads (one query, and
    none for saves of other fields, such as signing in's last_login)."""
    if instance.pk is None or (update_fields and not set(update_fields) & set(ACCESS_FIELDS)):
        return
    stored = sender.objects.filter(pk=instance.pk).values_list(*ACCESS_FIELDS).first()
    setattr(instance, _CHANGED, stored != tuple(getattr(instance, f) for f in ACCESS_FIELDS))


def _user_saved(sender, instance, created, **kwargs):
    if instance.__dict__.pop(_CHANGED, False) or not (created or instance.is_active):
        user_sockets_close([instance.pk])


def _user_deleted(sender, instance, **kwargs):
    user_sockets_close([instance.pk])


def _group_deleting(sender, instance, **kwargs):
    user_sockets_close(_members([instance.pk]))


def _user_object_permission(sender, instance, **kwargs):
    user_sockets_close([instance.user_id])


def _group_object_permission(sender, instance, **kwargs):
    user_sockets_close(_members([instance.group_id]))


def _user_relation_changed(sender, instance, action, reverse, pk_set, **kwargs):
    """A user's groups or global permissions, from either side (`user.groups.add(group)`,
    `group.user_set.add(user)`). Before the change, so a clear still finds whom it clears."""
    if not action.startswith("pre_"):
        return
    if not reverse:
        user_sockets_close([instance.pk])
    elif pk_set is not None:
        user_sockets_close(pk_set)
    else:
        user_sockets_close(instance.user_set.values_list("pk", flat=True))


def _group_permissions_changed(sender, instance, action, reverse, pk_set, **kwargs):
    """A group's global permissions, from either side: every member's sockets."""
    if not action.startswith("pre_"):
        return
    if not reverse:
        groups = [instance.pk]
    else:
        groups = pk_set if pk_set is not None else instance.group_set.values_list("pk", flat=True)
    user_sockets_close(_members(groups))


def connect() -> None:
    user = get_user_model()
    receivers = [
        (user_logged_out, _logged_out, None),
        (post_delete, _session_deleted, Session),
        (pre_save, _user_saving, user),
        (post_save, _user_saved, user),
        (post_delete, _user_deleted, user),
        (pre_delete, _group_deleting, Group),
        (post_save, _user_object_permission, WorkflowUserObjectPermission),
        (post_delete, _user_object_permission, WorkflowUserObjectPermission),
        (post_save, _group_object_permission, WorkflowGroupObjectPermission),
        (post_delete, _group_object_permission, WorkflowGroupObjectPermission),
        (m2m_changed, _user_relation_changed, user.groups.through),
        (m2m_changed, _user_relation_changed, user.user_permissions.through),
        (m2m_changed, _group_permissions_changed, Group.permissions.through),
    ]
    for signal, receiver, sender in receivers:
        uid = f"live-access-{receiver.__name__}-{getattr(sender, '__name__', 'any')}"
        signal.connect(receiver, sender=sender, weak=False, dispatch_uid=uid)
