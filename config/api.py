"""Map every API error to one JSON shape: {"error": {"code", "message", "details"}}."""

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
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        return _error(response.status_code, "invalid", "Invalid input.", response.data)
    detail = response.data.get("detail", "") if isinstance(response.data, dict) else response.data
    code = getattr(detail, "code", None) or getattr(exc, "default_code", "error")
    response.data = {"error": {"code": code, "message": str(detail), "details": {}}}
    return response


def _error(status_code, code, message, details):
    return Response({"error": {"code": code, "message": message, "details": details}}, status_code)
