"""Map every API error to one JSON shape: {"error": {"code", "message", "details"}}."""

import math

from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.errors import ChameleonError


def exception_handler(exc, context):
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
