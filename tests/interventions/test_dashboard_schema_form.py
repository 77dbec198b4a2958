"""An input's JSON Schema as HTML fields, and a POST read back into the data the resolve
service checks (the page answers with what the API would be sent)."""

import pytest
from django.http import QueryDict

from config.errors import InvalidInput
from interventions.dashboard.schema_form import errors_placed, form_fields, posted_data
from interventions.decisions import resolution_checked
from interventions.models import Intervention

FORM = {
    "type": "object",
    "required": ["name", "tier"],
    "properties": {
        "name": {"type": "string", "title": "Signer", "minLength": 2},
        "copies": {"type": "integer", "default": 1},
        "ratio": {"type": "number"},
        "urgent": {"type": "boolean"},
        "tier": {"enum": ["gold", "silver", 3]},
        "address": {"type": "object", "properties": {"zip": {"type": "string"}}},
    },
}


def posted(**values) -> QueryDict:
    query = QueryDict(mutable=True)
    for name, value in values.items():
        query[name.replace("__", ".")] = value
    return query


def test_each_kind_of_property_gets_its_own_widget():
    fields = {one.name: one for one in form_fields(FORM)}

    assert {name: one.widget for name, one in fields.items()} == {
        "data.name": "text", "data.copies": "number", "data.ratio": "number",
        "data.urgent": "checkbox", "data.tier": "select", "data.address": "json",
    }  # fmt: skip
    assert fields["data.name"].label == "Signer" and fields["data.name"].required
    assert fields["data.copies"].value == "1" and fields["data.copies"].integer
    assert fields["data.tier"].choices == [('"gold"', "gold"), ('"silver"', "silver"), ("3", "3")]


def test_a_post_becomes_typed_data_and_empty_fields_are_left_out():
    data, errors = posted_data(FORM, posted(data__name="Ada", data__copies="2", data__ratio="0.5",
                                            data__urgent="on", data__tier="3",
                                            data__address='{"zip": "75001"}'))  # fmt: skip

    assert errors == {}
    assert data == {"name": "Ada", "copies": 2, "ratio": 0.5, "urgent": True, "tier": 3,
                    "address": {"zip": "75001"}}  # fmt: skip
    assert posted_data(FORM, posted(data__tier='"gold"'))[0] == {"tier": "gold", "urgent": False}


def test_what_does_not_convert_is_left_for_the_schema_to_name():
    data, errors = posted_data(FORM, posted(data__name="Ada", data__tier='"gold"',
                                            data__copies="two", data__ratio="nan"))  # fmt: skip

    assert errors == {} and data["copies"] == "two" and data["ratio"] == "nan"
    with pytest.raises(InvalidInput) as refused:
        resolution_checked(Intervention(type="input", form=FORM), decision="submit", data=data,
                           output=None, comment="")  # fmt: skip
    fields = form_fields(FORM, posted(data__copies="two"))
    assert errors_placed(fields, refused.value.details) == []
    by_name = {one.name: one.error for one in fields}
    assert "not of type 'integer'" in by_name["data.copies"]
    assert "not of type 'number'" in by_name["data.ratio"]


def test_a_nested_object_s_textarea_must_hold_json_and_its_inner_errors_land_on_it():
    _, errors = posted_data(FORM, posted(data__address="{zip"))
    fields = form_fields(FORM)

    assert list(errors) == ["data.address"] and "Not valid JSON" in errors["data.address"]
    assert errors_placed(fields, {"data.address.zip": "42 is not of type 'string'"}) == []
    assert next(one for one in fields if one.name == "data.address").error.startswith("42")


@pytest.mark.parametrize("schema", [None, {"type": "array", "items": {"type": "string"}}])
def test_a_form_that_is_not_an_object_of_fields_is_one_json_editor(schema):
    [whole] = form_fields(schema)
    data, errors = posted_data(schema, posted(data='["a", "b"]'))

    assert (whole.name, whole.widget) == ("data", "json")
    assert (data, errors) == (["a", "b"], {})
