"""API tokens (simplejwt) that die when they should.

- A password change: simplejwt's revoke claim (CHECK_REVOKE_TOKEN: a hash of the stored password
  hash) is compared with the user's current one on every request and, here, on every refresh.
- A deactivation or a deletion: the user is loaded and checked on every request and refresh,
  and a deactivation blacklists the user's refresh tokens, so reactivating revives none.
- A logout: the refresh token is blacklisted, and the access tokens of the same sign-in (its
  `sid` claim) are refused for as long as one of them could still be unexpired.
"""

import logging
from uuid import uuid4

import redis
from django.core.cache import cache
from rest_framework_simplejwt import authentication, serializers
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
        # simplejwt's own refresh looks the user up unguarded (a deleted one is a 500) and never
        # compares the revoke claim: the same checks as every request make, first.
        JWTAuthentication().get_user(self.token_class(attrs["refresh"]))
        return super().validate(attrs)


def token_sign_out(*, refresh: str) -> None:
    """End the sign-in `refresh` belongs to: blacklist it, refuse its access tokens.

    Raises simplejwt's TokenError for a refresh token that is invalid, expired or blacklisted.
    """
    token = RefreshToken(refresh)
    sign_in = token.get(SIGN_IN_CLAIM)
    if sign_in:
        lifetime = api_settings.ACCESS_TOKEN_LIFETIME.total_seconds()
        cache.set(_signed_out_key(sign_in), True, timeout=int(lifetime) + 1)
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
        # token stays blacklisted in the database; its access tokens expire within minutes.
        logger.warning("sign-out not checked, the cache is unreachable: %s", exc)
        return False


def _signed_out_key(sign_in: str) -> str:
    return f"jwt-signed-out:{sign_in}"
