"""The OpenAPI schema documents every status an operation can answer: what each view declares,
plus the errors every view of its kind shares, which no view should have to repeat."""

from drf_spectacular import openapi
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny

from config.serializers import ERROR

WITH_BODY = ("POST", "PUT", "PATCH")


class JWTScheme(SimpleJWTScheme):
    target_class = "accounts.tokens.JWTAuthentication"


class AutoSchema(openapi.AutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in self._shared_errors():
            if str(code) not in responses:
                responses[str(code)] = self._get_response_for_code(ERROR, str(code),
                                                                   direction=direction)  # fmt: skip
        return dict(sorted(responses.items()))

    def _shared_errors(self) -> list[int]:
        codes = []
        if self.method in WITH_BODY:
            # Unreadable JSON; a body over DATA_UPLOAD_MAX_MEMORY_SIZE; a body that is not JSON.
            codes += [400, 413, 415]
            if any(isinstance(a, SessionAuthentication) for a in self.view.get_authenticators()):
                codes.append(403)  # a session's write without its CSRF token
        if any(not isinstance(p, AllowAny) for p in self.view.get_permissions()):
            codes.append(401)
        if self._is_list_view() and getattr(self.view, "pagination_class", None):
            codes.append(404)  # a cursor that is not one of ours
        if self.view.get_throttles():
            codes.append(429)
        return codes
