"""Tokens an attacker holds or forges get 401 in the API's error shape: on an API endpoint (the
access token) and on refresh (the refresh token). Each attack starts from a real sign-in."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import jwt
import pytest
from django.conf import settings
from django.db import connection
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import tokens
from tests.workflows.test_api import assert_error

pytestmark = pytest.mark.django_db

KEY = settings.SIMPLE_JWT["SIGNING_KEY"]


def _sign_in(user) -> dict:
    response = APIClient().post("/api/auth/token/", {"username": user.username, "password": "pw"},
                                format="json")  # fmt: skip
    assert response.status_code == 200, response.content
    return response.json()


def _claims(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def _forged(token: str, key=KEY, algorithm="HS256", **changes) -> str:
    return jwt.encode({**_claims(token), **changes}, key, algorithm=algorithm)


def _expired(token: str) -> str:
    an_hour_ago = int(time.time()) - 3600
    return _forged(token, exp=an_hour_ago, iat=an_hour_ago - 60)


def _tampered(token: str) -> str:
    """The claims changed to someone else's, the signature kept."""
    header, _, signature = token.split(".")
    claims = {**_claims(token), "user_id": str(int(_claims(token)["user_id"]) + 1)}
    payload = jwt.utils.base64url_encode(json.dumps(claims).encode()).decode()
    return f"{header}.{payload}.{signature}"


def _as_is(pair, user, kind):
    return pair[kind]


def _inactive(pair, user, kind):
    user.is_active = False
    user.save(update_fields=["is_active"])
    return pair[kind]


def _deleted(pair, user, kind):
    user.delete()
    return pair[kind]


def _password_changed(pair, user, kind):
    user.set_password("a new one")
    user.save(update_fields=["password"])
    return pair[kind]


def _signed_out(pair, user, kind):
    response = APIClient().post("/api/auth/logout/", {"refresh": pair["refresh"]}, format="json")
    assert response.status_code == 204, response.content
    return pair[kind]


def _rotated(pair, user, kind):
    response = APIClient().post("/api/auth/token/refresh/", {"refresh": pair["refresh"]},
                                format="json")  # fmt: skip
    assert response.status_code == 200, response.content
    return pair["refresh"]  # the one that was used up


# attack -> (pair, user, kind: "access" | "refresh") -> the token presented
ATTACKS = {
    "expired": lambda pair, user, kind: _expired(pair[kind]),
    "tampered": lambda pair, user, kind: _tampered(pair[kind]),
    "alg none": lambda pair, user, kind: _forged(pair[kind], key=None, algorithm="none"),
    "signed with another key": lambda pair, user, kind: _forged(pair[kind], key="not-the-key-" * 4),
    "wrong audience": lambda pair, user, kind: _forged(pair[kind], aud="another-api"),
    "no audience": lambda pair, user, kind: _forged(pair[kind], aud=None),
    "wrong issuer": lambda pair, user, kind: _forged(pair[kind], iss="someone-else"),
    "the other kind of token": lambda pair, user, kind: pair[
        "refresh" if kind == "access" else "access"
    ],
    "inactive user": _inactive,
    "deleted user": _deleted,
    "after a password change": _password_changed,
    "after logout": _signed_out,
}
REFRESH_ONLY = {"reused rotated refresh": _rotated}


def _api(token: str):
    return APIClient().get("/api/workflows/", HTTP_AUTHORIZATION=f"Bearer {token}")


def _refresh(token: str):
    return APIClient().post("/api/auth/token/refresh/", {"refresh": token}, format="json")


def test_a_fresh_pair_works_on_both(operator):
    pair = _sign_in(operator)

    assert _api(pair["access"]).status_code == 200
    assert _refresh(pair["refresh"]).status_code == 200


@pytest.mark.parametrize("attack", ATTACKS)
def test_an_attacked_access_token_is_refused(attack, operator):
    token = ATTACKS[attack](_sign_in(operator), operator, "access")

    assert_error(_api(token), 401)


@pytest.mark.parametrize("attack", {**ATTACKS, **REFRESH_ONLY})
def test_an_attacked_refresh_token_is_refused(attack, operator):
    token = {**ATTACKS, **REFRESH_ONLY}[attack](_sign_in(operator), operator, "refresh")

    assert_error(_refresh(token), 401)


def test_a_deleted_users_refresh_is_a_json_401_not_a_500(operator):
    pair = _sign_in(operator)
    operator.delete()

    assert_error(_refresh(pair["refresh"]), 401, "user_not_found")


def test_a_deactivated_users_refresh_stays_dead_when_reactivated(operator):
    pair = _sign_in(operator)
    _inactive(pair, operator, "refresh")

    operator.is_active = True
    operator.save()

    assert_error(_refresh(pair["refresh"]), 401)
    assert _refresh(_sign_in(operator)["refresh"]).status_code == 200


def test_logout_ends_only_its_own_sign_in(operator):
    mine, other = _sign_in(operator), _sign_in(operator)

    _signed_out(mine, operator, "refresh")

    assert _api(other["access"]).status_code == 200
    assert _refresh(other["refresh"]).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_of_one_refresh_token_refreshed_at_once_exactly_one_succeeds(operator):
    refresh, threads = _sign_in(operator)["refresh"], 8
    together = threading.Barrier(threads)

    def refresh_it(_):
        try:
            together.wait()
            return _refresh(refresh)
        finally:
            connection.close()  # each thread's own connection

    with ThreadPoolExecutor(threads) as pool:
        responses = list(pool.map(refresh_it, range(threads)))

    assert sorted(response.status_code for response in responses) == [200] + [401] * (threads - 1)
    for response in responses:
        if response.status_code == 401:
            assert_error(response, 401, "token_not_valid")


def test_logout_ends_every_token_of_the_sign_in_after_its_access_tokens_expire(
    operator, monkeypatch
):
    # given: access tokens that would be long dead, and a second chain of refresh tokens of the
    # same sign-in (as simultaneous refreshes made before a refresh claimed its token)
    monkeypatch.setattr(tokens.api_settings, "ACCESS_TOKEN_LIFETIME", timedelta(seconds=1))
    first = _sign_in(operator)
    rotated = _refresh(first["refresh"]).json()
    sibling = RefreshToken.for_user(operator)
    sibling[tokens.SIGN_IN_CLAIM] = _claims(first["refresh"])[tokens.SIGN_IN_CLAIM]

    # when: signed out, and past the lifetime of the access tokens
    _signed_out(rotated, operator, "refresh")
    time.sleep(2.5)

    # then
    for refresh in (first["refresh"], rotated["refresh"], str(sibling)):
        assert_error(_refresh(refresh), 401)
    assert_error(_api(str(sibling.access_token)), 401, "token_revoked")


def test_tokens_name_their_audience_and_issuer(operator):
    claims = _claims(_sign_in(operator)["access"])

    assert (claims["aud"], claims["iss"]) == ("chameleon-api", "chameleon")
