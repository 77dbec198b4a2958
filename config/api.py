"""Map every API error to one JSON shape: {"error": {"code", "message", "details"}}."""

import math
from http import HTTPStatus

from django.conf import settings
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.errors import ChameleonError, database_unreachable

DATABASE_RETRY_AFTER_S = 5


def exception_handler(exc, context):
    if database_unreachable(exc):
        # Restarting, failing over: a moment, not a bug (a deadlock or a timeout is a bug).
        response = _error(503, "unavailable", "The database is unreachable; retry shortly.", {})
        response["Retry-After"] = str(DATABASE_RETRY_AFTER_S)
        return response
    if isinstance(exc, ChameleonError):
        return _error(exc.status, exc.code, exc.message, exc.details)
    if isinstance(exc, Http404 | exceptions.NotFound):
        # Objects the caller may not see are indistinguishable from missing ones.
        return _error(status.HTTP_404_NOT_FOUND, "not_found", "Not found.", {})
    # DRF's handler sets the status and the WWW-Authenticate / Retry-After headers.
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = _body("invalid", "Invalid input.", response.data)
        return response
    data = response.data if isinstance(response.data, dict) else {"detail": response.data}
    detail = data.get("detail", "")
    # simplejwt puts its own code ("token_not_valid") and messages beside the detail.
    code = str(data.get("code") or getattr(detail, "code", None) or exc.default_code)
    details = {key: value for key, value in data.items() if key not in ("detail", "code")}
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        details["retry_after_s"] = math.ceil(exc.wait)
    response.data = _body(code, str(detail), details)
    return response


def _error(status_code, code, message, details):
    return Response(_body(code, message, details), status_code)


def _body(code, message, details) -> dict:
    return {"error": {"code": code, "message": message, "details": details}}


class ApiErrorsMiddleware:
    """Under /api/, every error is JSON: a declared body over DATA_UPLOAD_MAX_MEMORY_SIZE is
    refused with a 413 before anything reads it, and an error Django answered with a page (no
    matching URL, an id its converter refuses, an unreadable body, a crash; DEBUG's pages too)
    becomes the API's error shape. What DRF answered is JSON already and passes through."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith("/api/"):
            return self.get_response(request)
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if limit is not None and length > limit:
            message = f"The request body is over {limit} bytes."
            return JsonResponse(_body("too_large", message, {"limit_bytes": limit}), status=413)
        response = self.get_response(request)
        if response.status_code < 400 or response.get("Content-Type", "").startswith(
            "application/json"
        ):
            return response
        phrase = HTTPStatus(response.status_code).phrase
        code = _CODES.get(response.status_code, phrase.lower().replace(" ", "_"))
        page = JsonResponse(_body(code, f"{phrase}.", {}), status=response.status_code)
        if response.has_header("WWW-Authenticate"):
            page["WWW-Authenticate"] = response["WWW-Authenticate"]
        return page


_CODES = {401: "not_authenticated", 403: "permission_denied", 500: "server_error"}
