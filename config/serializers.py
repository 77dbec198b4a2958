"""What every part of the API shares: the spec field of definitions (workflows, agents,
providers), the error shape with its OpenAPI description, input parsing and the 403."""

from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "description": "The spec as YAML or JSON text."},
            {"type": "object", "additionalProperties": True, "description": "The spec object."},
        ]
    }
)
class SpecField(serializers.Field):
    """A workflow spec: YAML/JSON text or an already parsed object; services validate it."""

    default_error_messages = {"type": "Expected a YAML or JSON string or an object."}

    def to_internal_value(self, data):
        if not isinstance(data, str | dict):
            self.fail("type")
        return data

    def to_representation(self, value):
        return value


class SpecInput(serializers.Serializer):
    spec = SpecField()


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.JSONField()


class ErrorSerializer(serializers.Serializer):
    """Every error response: {"error": {"code", "message", "details"}}."""

    error = ErrorBodySerializer()


ERROR = OpenApiResponse(ErrorSerializer, description='{"error": {code, message, details}}')


def api_errors(*codes: int) -> dict:
    """The error responses of an operation, for extend_schema."""
    return dict.fromkeys(codes, ERROR)


def parsed(serializer_class, data) -> dict:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def require(allowed: bool, message: str) -> None:
    """A 403 for what the caller may see but not do."""
    if not allowed:
        raise PermissionDenied(message)
