"""Sign-in lockout (django-axes: failures counted per username and client address, on the API's
token view, the dashboard's sign-in and the admin's): the 429s a locked-out client gets, and the
audit entry each lockout leaves."""

import math

from axes.helpers import get_cool_off, get_failure_limit
from django.contrib.auth import get_user_model
from django.db import transaction
from django.shortcuts import render
from rest_framework.exceptions import Throttled

from accounts.audit import audit_record

MESSAGE = "Too many failed sign-ins for this account from this address."


class LockedOut(Throttled):
    """The API's lockout: a 429 in the API's error shape, with Retry-After."""

    default_code = "locked_out"


def locked_out(request) -> bool:
    """Whether axes refused (or has just locked out) the sign-in being served."""
    return bool(getattr(request, "axes_locked_out", False))


def locked_out_error(request) -> LockedOut:
    return LockedOut(wait=_cool_off_s(request), detail=MESSAGE)


def lockout_page(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: the pages' lockout (the dashboard's and the admin's sign-in)."""
    cool_off_s = _cool_off_s(request)
    context = {"message": MESSAGE, "minutes": math.ceil(cool_off_s / 60)}
    response = render(request, "accounts/locked_out.html", context, status=429)
    response["Retry-After"] = str(cool_off_s)
    return response


def lockout_audit(sender, request, username, ip_address, **kwargs) -> None:
    """Receiver of axes' user_locked_out: one entry when a lockout begins.

    Axes sends the signal again for each attempt during the lockout (each counts as one more
    failure and restarts the cool-off): only the one that reached the limit is the lockout.
    """
    failures = getattr(request, "axes_failures_since_start", None)
    if failures != get_failure_limit(request, getattr(request, "axes_credentials", None)):
        return
    user = get_user_model().objects.filter(username=username).first() if username else None
    with transaction.atomic():
        audit_record(
            actor=None, action="auth.lockout", obj=user, object_type="accounts.user",
            object_id=user.pk if user else (username or "")[:100],
            after={"username": username, "ip": ip_address, "failures": failures,
                   "path": request.path, "cool_off_s": _cool_off_s(request)},
        )  # fmt: skip


def _cool_off_s(request) -> int:
    cool_off = get_cool_off(request)
    return math.ceil(cool_off.total_seconds()) if cool_off else 0
