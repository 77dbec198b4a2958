"""Sign-in limits on the API's token view, the dashboard's sign-in and the admin's:

- the `auth` rate per client address (the pages' POSTs here; the token views' in DRF), a 429;
- django-axes' lockout: AXES_FAILURE_LIMIT failures for one username from one address;
- a lockout of the username from any address: AXES_USERNAME_FAILURE_LIMIT failures in a clock
  hour, until the hour ends, against a password spray spread over many addresses.

Here: the 429s a limited client gets (JSON on the API, a page on the pages) and the audit entry
each lockout leaves.
"""

import functools
import hashlib
import logging
import math

import redis
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username, get_cool_off, get_failure_limit
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.shortcuts import render
from rest_framework.exceptions import Throttled

from accounts.audit import audit_record
from config.throttles import FixedWindow, SignInRateThrottle

logger = logging.getLogger(__name__)

MESSAGE = "Too many failed sign-ins for this account from this address."
USERNAME_MESSAGE = "Too many failed sign-ins for this account."
RATE_MESSAGE = "Too many sign-in attempts from this address."
USERNAME_WINDOW_S = 3600


class LockedOut(Throttled):
    """The API's lockout: a 429 in the API's error shape, with Retry-After."""

    default_code = "locked_out"


class AxesHandler(AxesDatabaseHandler):
    """AXES_HANDLER: axes' lockout per username and address, and the one per username.

    Axes counts every lockout parameter against one failure limit, so a username's own limit,
    higher than the pair's, is counted here: in Redis, failing open like the rate limits.
    """

    def is_locked(self, request, credentials=None) -> bool:
        window = _username_window(get_client_username(request, credentials))
        if window is not None and _safely(window.count) >= settings.AXES_USERNAME_FAILURE_LIMIT:
            request.axes_username_locked_s = window.wait_s  # the 429 says which lock, how long
            return True
        return super().is_locked(request, credentials)

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        super().user_login_failed(sender, credentials, request, **kwargs)
        username = get_client_username(request, credentials) if request is not None else None
        window = _username_window(username)
        if window is None:
            return
        failures = _safely(window.add)
        if failures < settings.AXES_USERNAME_FAILURE_LIMIT:
            return
        request.axes_locked_out = True
        request.axes_username_locked_s = window.wait_s
        if failures == settings.AXES_USERNAME_FAILURE_LIMIT:
            _audit_lockout(request, username, failures, scope="username",
                           cool_off_s=math.ceil(window.wait_s))  # fmt: skip

    def reset_attempts(self, *, ip_address=None, username=None, ip_or_username=False) -> int:
        """Axes' reset (`manage.py axes_reset_username NAME`) ends the username's lockout too."""
        window = _username_window(username)
        if window is not None:
            _safely(window.clear)
        return super().reset_attempts(
            ip_address=ip_address, username=username, ip_or_username=ip_or_username
        )


def locked_out(request) -> bool:
    """Whether axes refused (or has just locked out) the sign-in being served."""
    return bool(getattr(request, "axes_locked_out", False))


def locked_out_error(request) -> LockedOut:
    message, wait_s = _lockout(request)
    return LockedOut(wait=wait_s, detail=message)


def lockout_page(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: the pages' lockout (the dashboard's and the admin's sign-in)."""
    message, wait_s = _lockout(request)
    return _refusal_page(request, message, wait_s, unlockable=True)


def sign_in_rate_limited(view):
    """The `auth` rate per client address on a sign-in page's POST: a 429 page beyond it."""

    @functools.wraps(view)
    def limited(request, *args, **kwargs):
        throttle = SignInRateThrottle()
        if request.method == "POST" and not throttle.allow_request(request, None):
            return _refusal_page(request, RATE_MESSAGE, math.ceil(throttle.wait() or 1))
        return view(request, *args, **kwargs)

    return limited


def lockout_audit(sender, request, username, ip_address, **kwargs) -> None:
    """Receiver of axes' user_locked_out: one entry when a lockout begins.

    Axes sends the signal again for each attempt during the lockout (each counts as one more
    failure and restarts the cool-off): only the one that reached the limit is the lockout.
    """
    failures = getattr(request, "axes_failures_since_start", None)
    if failures != get_failure_limit(request, getattr(request, "axes_credentials", None)):
        return
    _audit_lockout(request, username, failures, scope="username and address",
                   cool_off_s=_cool_off_s(request))  # fmt: skip


def _audit_lockout(request, username, failures: int, *, scope: str, cool_off_s: int) -> None:
    user = get_user_model().objects.filter(username=username).first() if username else None
    with transaction.atomic():
        audit_record(
            actor=None, action="auth.lockout", obj=user, object_type="accounts.user",
            object_id=user.pk if user else (username or "")[:100],
            after={"username": username, "ip": request.axes_ip_address, "failures": failures,
                   "scope": scope, "path": request.path, "cool_off_s": cool_off_s},
        )  # fmt: skip


def _lockout(request) -> tuple[str, int]:
    """The lockout that refused the sign-in: its message and the seconds until it ends."""
    username_s = getattr(request, "axes_username_locked_s", None)
    if username_s is None:
        return MESSAGE, _cool_off_s(request)
    pair_failures = getattr(request, "axes_failures_since_start", 0)
    pair = pair_failures >= get_failure_limit(request, getattr(request, "axes_credentials", None))
    return USERNAME_MESSAGE, max(math.ceil(username_s), _cool_off_s(request) if pair else 0)


def _refusal_page(request, message: str, wait_s: int, *, unlockable: bool = False):
    context = {"message": message, "minutes": math.ceil(wait_s / 60), "unlockable": unlockable}
    response = render(request, "accounts/locked_out.html", context, status=429)
    response["Retry-After"] = str(wait_s)
    return response


def _username_window(username: str | None) -> FixedWindow | None:
    if not username:
        return None
    digest = hashlib.sha256(username.encode()).hexdigest()  # any text, any length: a fixed key
    return FixedWindow(f"sign-in-failures:{digest}", USERNAME_WINDOW_S)


def _safely(call):
    """`call()`, or 0 (no failures counted) while the cache is unreachable."""
    try:
        return call()
    except (redis.RedisError, OSError) as exc:
        logger.warning("username lockout not checked, the cache is unreachable: %s", exc)
        return 0


def _cool_off_s(request) -> int:
    cool_off = get_cool_off(request)
    return math.ceil(cool_off.total_seconds()) if cool_off else 0
