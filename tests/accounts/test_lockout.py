"""Guessing passwords locks the username out from that address (django-axes), and from every
address after more failures from any, on the API's token view, the dashboard's sign-in and the
admin's: 429, the right password included, audited."""

from datetime import timedelta

import pytest
import redis
from axes.models import AccessAttempt
from django.core.management import call_command
from rest_framework.test import APIClient

from accounts.models import AuditEntry
from tests.workflows.test_api import assert_error

pytestmark = pytest.mark.django_db

LIMIT = 3
USERNAME_LIMIT = 10  # above the LIMIT + 5 one address tries below


@pytest.fixture(autouse=True)
def low_limit(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT
    settings.AXES_USERNAME_FAILURE_LIMIT = USERNAME_LIMIT
    # The username counts live in Redis, which outlives test databases.
    cache = redis.Redis.from_url(settings.REDIS_URL)
    for key in cache.scan_iter("*sign-in-failures:*"):
        cache.delete(key)


def _token(username, password, address="10.0.0.1", **headers):
    return APIClient().post("/api/auth/token/", {"username": username, "password": password},
                            format="json", REMOTE_ADDR=address, **headers)  # fmt: skip


def _page(client, path, username, password, address="10.0.0.1"):
    return client.post(path, {"username": username, "password": password}, REMOTE_ADDR=address)


def test_the_api_locks_out_after_the_limit_the_right_password_included(operator):
    statuses = [_token(operator.username, "wrong").status_code for _ in range(LIMIT - 1)]

    locking = _token(operator.username, "wrong")
    right = _token(operator.username, "pw")

    assert statuses == [401] * (LIMIT - 1)
    for response in (locking, right):
        error = assert_error(response, 429, "locked_out")
        assert error["details"]["retry_after_s"] == 15 * 60
        assert response.headers["Retry-After"] == str(15 * 60)


def test_a_lockout_holds_the_username_at_that_address_only(operator, make_user):
    for _ in range(LIMIT):
        _token(operator.username, "wrong")
    someone_else = make_user()

    assert _token(operator.username, "pw", address="10.0.0.2").status_code == 200
    assert _token(someone_else.username, "pw").status_code == 200


def test_fresh_forwarded_for_addresses_do_not_escape_a_lockout(operator):
    for n in range(LIMIT):
        _token(operator.username, "wrong", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}")

    response = _token(operator.username, "pw", HTTP_X_FORWARDED_FOR="192.0.2.99")

    assert_error(response, 429, "locked_out")


def test_the_lockout_ends_after_the_cool_off(operator):
    for _ in range(LIMIT):
        _token(operator.username, "wrong")
    attempt = AccessAttempt.objects.get(username=operator.username)

    AccessAttempt.objects.filter(pk=attempt.pk).update(
        attempt_time=attempt.attempt_time - timedelta(minutes=16)
    )

    assert _token(operator.username, "pw").status_code == 200


def test_a_success_clears_the_failures(operator):
    for _ in range(LIMIT - 1):
        _token(operator.username, "wrong")
    assert _token(operator.username, "pw").status_code == 200

    after = [_token(operator.username, "wrong").status_code for _ in range(LIMIT - 1)]

    assert after == [401] * (LIMIT - 1)
    assert _token(operator.username, "pw").status_code == 200


@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_the_sign_in_pages_lock_out_with_a_page_that_says_so(client, path, make_user):
    admin = make_user("admin", superuser=True)
    for _ in range(LIMIT):
        _page(client, path, admin.username, "wrong")

    response = _page(client, path, admin.username, "pw")

    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.content.decode()
    assert "Try again in 15 minutes" in response.content.decode()
    assert response["Retry-After"] == str(15 * 60)
    assert "_auth_user_id" not in client.session


def test_a_lockout_leaves_one_audit_entry_however_long_it_is_tried(operator):
    for _ in range(LIMIT + 5):
        _token(operator.username, "wrong")

    entry = AuditEntry.objects.get(action="auth.lockout")

    assert (entry.object_type, entry.object_id, entry.ip) == (
        "accounts.user", str(operator.pk), "10.0.0.1",
    )  # fmt: skip
    assert entry.after["failures"] == LIMIT
    assert entry.after["path"] == "/api/auth/token/"


def test_an_unknown_username_is_locked_out_and_audited_alike():
    for _ in range(LIMIT):
        _token("nobody", "wrong")

    assert_error(_token("nobody", "wrong"), 429, "locked_out")
    assert AuditEntry.objects.get(action="auth.lockout").object_id == "nobody"


def _spray(username, failures, path=None, client=None) -> list[int]:
    """`failures` wrong passwords for `username`, each from an address of its own: statuses."""
    addresses = [f"10.1.0.{n}" for n in range(failures)]
    if path:
        return [_page(client, path, username, "wrong", a).status_code for a in addresses]
    return [_token(username, "wrong", a).status_code for a in addresses]


def test_failures_from_many_addresses_lock_the_username_out_from_all(operator, make_user):
    statuses = _spray(operator.username, USERNAME_LIMIT - 1)

    locking = _token(operator.username, "wrong", address="10.2.0.1")
    right = _token(operator.username, "pw", address="10.2.0.2")

    assert statuses == [401] * (USERNAME_LIMIT - 1)
    for response in (locking, right):
        error = assert_error(response, 429, "locked_out")
        assert error["message"].startswith("Too many failed sign-ins for this account.")
        assert 1 <= error["details"]["retry_after_s"] <= 3600
    assert _token(make_user().username, "pw", address="10.2.0.2").status_code == 200


def test_a_username_lockout_leaves_one_audit_entry(operator):
    _spray(operator.username, USERNAME_LIMIT + 3)

    entry = AuditEntry.objects.get(action="auth.lockout")

    assert (entry.object_id, entry.after["scope"], entry.after["failures"]) == (
        str(operator.pk), "username", USERNAME_LIMIT,
    )  # fmt: skip


@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_the_sign_in_pages_lock_a_sprayed_username_out_from_every_address(client, path, make_user):
    admin = make_user("admin", superuser=True)
    _spray(admin.username, USERNAME_LIMIT, path=path, client=client)

    response = _page(client, path, admin.username, "pw", address="10.2.0.1")

    assert response.status_code == 429
    assert "Too many failed sign-ins for this account. Try again in" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_axes_reset_username_ends_the_username_lockout(operator):
    _spray(operator.username, USERNAME_LIMIT)

    call_command("axes_reset_username", operator.username)

    assert _token(operator.username, "pw", address="10.2.0.1").status_code == 200
