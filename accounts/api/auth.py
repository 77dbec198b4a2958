"""Signing in to the API: a JWT pair for a username and password (locked out after repeated
failures), refreshing it (the refresh token rotates), and signing out (it is blacklisted)."""

from django.contrib.auth.signals import user_logged_in
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.response import Response
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.views import TokenViewBase

from accounts.lockout import locked_out, locked_out_error
from accounts.tokens import TokenObtainPairSerializer, TokenRefreshSerializer, token_sign_out
from config.serializers import api_errors, parsed

PAIR = inline_serializer("TokenPair", {"access": serializers.CharField(),
                                       "refresh": serializers.CharField()})  # fmt: skip
CREDENTIALS = inline_serializer("Credentials", {"username": serializers.CharField(),
                                                "password": serializers.CharField()})  # fmt: skip


class RefreshInput(serializers.Serializer):
    refresh = serializers.CharField()


class _TokenView(TokenViewBase):
    throttle_scope = "auth"  # config.throttles.ScopedRateThrottle, per client address


class TokenObtainView(_TokenView):
    serializer_class = TokenObtainPairSerializer

    @extend_schema(
        summary="A JWT pair (access, refresh) for a username and password",
        description="Repeated failures for one username from one address lock both out for "
        "a while, and more from any addresses lock the username out until the clock hour ends "
        "(429, code locked_out), the right password included. Each address has a rate of its "
        "own across the sign-ins (429, code throttled).",
        request=CREDENTIALS,
        responses={200: PAIR, **api_errors(400, 401, 429)},
    )
    def post(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        try:
            serializer.is_valid(raise_exception=True)
        except AuthenticationFailed:
            if locked_out(request):
                raise locked_out_error(request) from None
            raise
        # What a session sign-in sends too: the last login, and axes clearing the failures.
        user_logged_in.send(sender=type(serializer.user), request=request, user=serializer.user)
        return Response(serializer.validated_data)


class TokenRefreshView(_TokenView):
    serializer_class = TokenRefreshSerializer

    @extend_schema(
        summary="A new JWT pair for a refresh token, which is used up",
        request=RefreshInput,
        responses={200: PAIR, **api_errors(400, 401, 429)},
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


class SignOutView(_TokenView):
    serializer_class = RefreshInput

    @extend_schema(
        summary="Sign out: the refresh token and the access tokens of its sign-in stop working",
        request=RefreshInput,
        responses={204: None, **api_errors(400, 401, 429)},
    )
    def post(self, request, *args, **kwargs):
        try:
            token_sign_out(refresh=parsed(RefreshInput, request.data)["refresh"])
        except TokenError as error:
            raise InvalidToken(error.args[0]) from error
        return Response(status=status.HTTP_204_NO_CONTENT)
