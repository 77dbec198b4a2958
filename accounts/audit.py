"""The audit log: `audit_record` writes one AuditEntry for a privileged act, in the caller's
transaction (so the entry exists exactly when the act does). The client's address, and the user
for acts that happen below any service (an object permission granted in the admin), come from
the request being served (AuditRequestMiddleware), if any."""

from contextvars import ContextVar

from django.db import transaction

from accounts.models import AuditEntry
from config.throttles import client_address

_request: ContextVar = ContextVar("audit_request", default=None)


def audit_record(*, actor, action: str, obj=None, object_type: str = "", object_id="",
                 before=None, after=None) -> AuditEntry:  # fmt: skip
    """Record that `actor` (a user, or None for the system) did `action` to `obj` (a model
    instance) or to the object named by `object_type`/`object_id`."""
    assert transaction.get_connection().in_atomic_block, "audit inside the act's transaction"
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or str(obj.pk)
    user = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEntry.objects.create(
        actor=user, actor_name=user.get_username() if user else "", action=action,
        object_type=object_type, object_id=str(object_id), object_repr=str(obj or "")[:200],
        before=before, after=after, ip=_client_ip(),
    )  # fmt: skip


def request_user():
    """The signed-in user of the request being served, or None."""
    request = _request.get()
    user = getattr(request, "user", None)
    return user if getattr(user, "is_authenticated", False) else None


def _client_ip() -> str | None:
    request = _request.get()
    return client_address(request) if request is not None else None


class AuditRequestMiddleware:
    """Make the request (its client address, as NUM_PROXIES says to read it, and its user)
    known to the audit entries written while it is served."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)
