"""The API's request parser (REST_FRAMEWORK's DEFAULT_PARSER_CLASSES)."""

from rest_framework import exceptions, parsers

from config.bounds import json_checked
from config.errors import ChameleonError


class JSONParser(parsers.JSONParser):
    """DRF's, refusing with a 400 what would fail later as a 500: JSON nested past the
    recursion limit, or past config.bounds (depth, NUL characters, lone surrogates)."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None
        try:
            return json_checked(data, "body")
        except ChameleonError as exc:
            raise exceptions.ValidationError(exc.details) from None
