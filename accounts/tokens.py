"""API tokens (simplejwt) that die when they should.

- A password change: simplejwt's revoke claim (CHECK_REVOKE_TOKEN: a hash of the stored password
  hash) is compared with the user's current one on every request and, here, on every refresh.
- A deactivation or a deletion: the user is loaded and checked on every request and refresh,
  and a deactivation blacklists the user's refresh tokens, so reactivating revives none.
- A refresh: the refresh token is used up (blacklisted) before the new pair is minted, in one
  transaction, so of any number of refreshes of one token at once exactly one succeeds: a sign-in
  is one chain of refresh tokens, never several.
- A logout: the refresh token is blacklisted, and every token of the same sign-in (its `sid`
  claim), access or refresh, is refused for as long as one of them could still be unexpired.
"""

import logging
from uuid import uuid4

import redis
from django.core.cache import cache
from django.db import IntegrityError, transaction
from rest_framework_simplejwt import authentication, serializers
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken, Token

logger = logging.getLogger(__name__)

SIGN_IN_CLAIM = "sid"  # one per sign-in, kept by its rotated refresh and its access tokens


class JWTAuthentication(authentication.JWTAuthentication):
    def get_user(self, validated_token: Token):
        # simplejwt refuses a missing or inactive user and a changed password (the revoke claim).
        user = super().get_user(validated_token)
        if _signed_out(validated_token.get(SIGN_IN_CLAIM)):
            raise authentication.AuthenticationFailed(
                "This sign-in has been logged out.", code="token_revoked"
            )
        return user


class TokenObtainPairSerializer(serializers.TokenObtainPairSerializer):
    @classmethod
    def get_token(cls, user) -> RefreshToken:
        token = super().get_token(user)
        token[SIGN_IN_CLAIM] = uuid4().hex
        return token


class TokenRefreshSerializer(serializers.TokenRefreshSerializer):
    def validate(self, attrs):
        return token_refresh(refresh=attrs["refresh"])


@transaction.atomic
def token_refresh(*, refresh: str) -> dict[str, str]:
    """A new pair (access, refresh) for `refresh`, which is used up.

    simplejwt's own refresh checks the blacklist, then blacklists with get_or_create: refreshes
    of one token at once all pass. Here the token is claimed first, by inserting its blacklist
    row: the unique constraint lets one insert through and fails the others (they wait for it).
    Raises simplejwt's TokenError (401) for a token invalid, expired or used up, and
    AuthenticationFailed (401) for a sign-in that has ended or a user who may no longer sign in.
    """
    token = RefreshToken(refresh)
    # simplejwt's refresh looks the user up unguarded (a deleted one is a 500) and never compares
    # the revoke claim: the same checks as every request make.
    JWTAuthentication().get_user(token)
    outstanding = OutstandingToken.objects.filter(jti=token[api_settings.JTI_CLAIM]).first()
    if outstanding is None:  # every refresh token this API issues is recorded as it is issued
        raise TokenError("Token is not known")
    try:
        with transaction.atomic():
            BlacklistedToken.objects.create(token=outstanding)
    except IntegrityError:
        raise TokenError("Token is blacklisted") from None
    access = str(token.access_token)
    token.set_jti()
    token.set_exp()
    token.set_iat()
    token.outstand()
    return {"access": access, "refresh": str(token)}


def token_sign_out(*, refresh: str) -> None:
    """End the sign-in `refresh` belongs to: blacklist it, refuse every token of the sign-in.

    Raises simplejwt's TokenError for a refresh token that is invalid, expired or blacklisted.
    """
    token = RefreshToken(refresh)
    sign_in = token.get(SIGN_IN_CLAIM)
    if sign_in:
        # Any token of the sign-in was minted before now, so it expires within the longer
        # lifetime: until then its refresh tokens are refused (JWTAuthentication) like its
        # access tokens, whichever chain of the sign-in they descend from.
        lifetimes = (api_settings.ACCESS_TOKEN_LIFETIME, api_settings.REFRESH_TOKEN_LIFETIME)
        cache.set(_signed_out_key(sign_in), True, timeout=int(max(lifetimes).total_seconds()) + 1)
    token.blacklist()


def tokens_revoke_on_deactivation(sender, instance, update_fields=None, **kwargs) -> None:
    """pre_save receiver of the user model: a user saved inactive who was active loses every
    refresh token (in the save's transaction). QuerySet.update() sends no signal: deactivate
    with save()."""
    if instance.pk is None or instance.is_active:
        return
    if update_fields is not None and "is_active" not in update_fields:
        return
    if sender.objects.filter(pk=instance.pk, is_active=True).exists():
        live = OutstandingToken.objects.filter(user_id=instance.pk, blacklistedtoken__isnull=True)
        BlacklistedToken.objects.bulk_create(
            [BlacklistedToken(token=token) for token in live], ignore_conflicts=True
        )


def _signed_out(sign_in: str | None) -> bool:
    if not sign_in:
        return False  # a token minted outside a sign-in (tests, scripts) has no sign-in to end
    try:
        return bool(cache.get(_signed_out_key(sign_in)))
    except (redis.RedisError, OSError) as exc:
        # Like the rate limits: an outage of the cache must not take the API down. The refresh
        # token stays blacklisted in the database (and a sign-in has one live refresh token at a
        # time); its access tokens expire within minutes.
        logger.warning("sign-out not checked, the cache is unreachable: %s", exc)
        return False


def _signed_out_key(sign_in: str) -> str:
    return f"jwt-signed-out:{sign_in}"
