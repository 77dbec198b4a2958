"""An input intervention's form (its JSON Schema) as HTML fields, and the POST back into the data
the schema describes.

Checking the answer is the resolve service's (decisions.resolution_checked), as in the API: a
value that does not convert is passed on as typed, so the schema's own message names its field.
Only what is not even JSON (a nested object's textarea) is refused here.
"""

import json
import math
from dataclasses import dataclass, field

WHOLE = "data"  # the field holding the whole answer when the form is not an object of fields


@dataclass
class Field:
    name: str  # the POST name and the error key: data.<property>, or data for the whole answer
    label: str
    widget: str  # text, number, checkbox, select, json
    required: bool = False
    value: str = ""  # as shown in the input (for a checkbox: "on" when ticked)
    choices: list[tuple[str, str]] = field(default_factory=list)  # select: (value, label)
    help: str = ""
    error: str = ""
    integer: bool = False

    @property
    def html_id(self) -> str:
        return "field-" + self.name.replace(".", "-")


def form_fields(schema, posted=None) -> list[Field]:
    """The fields of `schema`, showing what was `posted` (a QueryDict) or else the defaults."""
    properties = _properties(schema)
    if properties is None:
        whole = Field(WHOLE, "Answer (JSON)", "json", required=True,
                      help="Any JSON value." if schema is None else _summary(schema))  # fmt: skip
        whole.value = posted.get(WHOLE, "") if posted is not None else _shown(schema, "json")
        return [whole]
    required = set(schema.get("required", []))
    fields = []
    for name, spec in properties.items():
        spec = spec if isinstance(spec, dict) else {}
        one = Field(f"{WHOLE}.{name}", spec.get("title") or name, _widget(spec),
                    required=name in required, help=spec.get("description", ""),
                    integer=spec.get("type") == "integer")  # fmt: skip
        if one.widget == "select":
            one.choices = [(json.dumps(value), str(value)) for value in spec["enum"]]
        if posted is None:
            one.value = _shown(spec, one.widget)
        elif one.widget == "checkbox":
            one.value = "on" if one.name in posted else ""
        else:
            one.value = posted.get(one.name, "")
        fields.append(one)
    return fields


def posted_data(schema, posted) -> tuple[object, dict[str, str]]:
    """The answer's data from the POST, and the errors of fields that hold no JSON at all."""
    errors: dict[str, str] = {}
    fields = form_fields(schema, posted)
    if _properties(schema) is None:
        return _json_of(fields[0], errors), errors
    data = {}
    for one in fields:
        name = one.name.removeprefix(WHOLE + ".")
        if one.widget == "checkbox":
            data[name] = one.value == "on"
            continue
        raw = one.value.strip()
        if raw == "":  # left empty: absent (the schema says whether it may be)
            continue
        if one.widget == "number":
            data[name] = _number(raw)
        elif one.widget == "select":
            data[name] = _loaded(raw)
        elif one.widget == "json":
            value = _json_of(one, errors)
            if value is not None:
                data[name] = value
        else:
            data[name] = one.value
    return data, errors


def json_value(raw: str) -> tuple[object, str]:
    """A JSON editor's value (None when empty) and the error when it holds no JSON."""
    if not raw.strip():
        return None, ""
    try:
        return json.loads(raw), ""
    except json.JSONDecodeError as exc:
        return None, f"Not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})."


def errors_placed(fields: list[Field], details: dict) -> list[str]:
    """Put each error (keyed as the resolve service names them: data.name, data.address.zip)
    on its field; return the ones no field holds."""
    loose = []
    for key, message in details.items():
        owner = next((one for one in fields if key == one.name
                      or key.startswith((one.name + ".", one.name + "["))), None)  # fmt: skip
        if owner is None:
            loose.append(f"{key}: {message}" if key != WHOLE else str(message))
        else:
            owner.error = str(message)
    return loose


def _properties(schema):
    """The schema's properties when it is an object of them, else None (one JSON field)."""
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return None
    if schema.get("type", "object") != "object" or not schema["properties"]:
        return None
    return schema["properties"]


def _widget(spec: dict) -> str:
    if isinstance(spec.get("enum"), list) and spec["enum"]:
        return "select"
    return {"string": "text", "number": "number", "integer": "number",
            "boolean": "checkbox"}.get(spec.get("type"), "json")  # fmt: skip


def _shown(spec, widget: str) -> str:
    if not isinstance(spec, dict) or "default" not in spec:
        return ""
    default = spec["default"]
    if widget == "checkbox":
        return "on" if default else ""
    if widget in ("select", "json"):
        return json.dumps(default, indent=2) if widget == "json" else json.dumps(default)
    return str(default)


def _summary(schema) -> str:
    return f"JSON fitting: {json.dumps(schema)[:300]}"


def _number(raw: str):
    for convert in (int, float):
        try:
            number = convert(raw)
        except ValueError:
            continue
        if math.isfinite(number):
            return number
    return raw  # not a number (nor nan, inf, which JSON cannot hold): the schema says so


def _loaded(raw: str):
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def _json_of(one: Field, errors: dict):
    value, error = json_value(one.value)
    if error:
        errors[one.name] = error
    return value
