import json

import pytest

from config.errors import InvalidInput
from workflows.spec import inputs_resolve, spec_parse


def errors_of(source) -> dict:
    with pytest.raises(InvalidInput) as caught:
        spec_parse(source)
    return caught.value.details


def test_valid_yaml_and_equivalent_json_parse_to_the_same_canonical_spec():
    yaml_source = """
slug: demo
inputs: {name: {type: string, required: true}}
steps:
  - id: a
    tool: noop
    with: {value: "{{ inputs.name }}"}
"""
    spec, canonical = spec_parse(yaml_source)
    _, from_json = spec_parse(json.dumps(canonical))

    assert spec.steps[0].kind == "tool"
    assert from_json == canonical


def test_unknown_need_is_reported_with_its_path():
    details = errors_of(
        {
            "slug": "x",
            "steps": [
                {"id": "fetch", "tool": "noop"},
                {"id": "b", "tool": "noop", "needs": ["fetchh"]},
            ],
        }
    )
    assert details == {"steps[1].needs[0]": ["unknown step 'fetchh'"]}


def test_every_error_is_reported_not_just_the_first():
    details = errors_of(
        {
            "slug": "x",
            "steps": [
                {"id": "a", "tool": "nope"},
                {"id": "a", "tool": "noop"},
                {"id": "c", "tool": "noop", "needs": ["zzz"], "when": "1 +"},
            ],
        }
    )
    assert "steps[0].tool" in details
    assert details["steps[1].id"] == ["duplicate step id 'a' (also steps[0])"]
    assert details["steps[2].needs[0]"] == ["unknown step 'zzz'"]
    assert "syntax error" in details["steps[2].when"][0]


def test_schema_errors_do_not_hide_the_rules_other_parts_break():
    details = errors_of(
        {
            "slug": "x",
            "inputs": {"n": {"type": "int"}},
            "steps": [
                {"id": "a", "tool": "noop", "retry": {"max_attempts": 0}},
                {"id": "b", "tool": "noop", "needs": ["a", "ghost"]},
                {"id": "c", "tool": "nope", "needs": ["zzz"], "with": {"v": "{{ inputs.n }}"}},
            ],
        }
    )
    assert set(details) == {
        "inputs.n.type",
        "steps[0].retry.max_attempts",
        "steps[1].needs[1]",
        "steps[2].tool",
        "steps[2].needs[0]",
    }


def test_cycles_are_rejected_naming_the_cycle():
    details = errors_of(
        {
            "slug": "x",
            "steps": [
                {"id": "a", "tool": "noop", "needs": ["c"]},
                {"id": "b", "tool": "noop", "needs": ["a"]},
                {"id": "c", "tool": "noop", "needs": ["b"]},
            ],
        }
    )
    [(path, [message])] = details.items()
    assert path.endswith(".needs") and message.startswith("cycle: ")
    assert {"a", "b", "c"} <= set(message.removeprefix("cycle: ").split(" -> "))


@pytest.mark.parametrize(
    ("step", "path", "fragment"),
    [
        (
            {"id": "b", "tool": "noop", "retry": {"max_attempts": 0}},
            "steps[1].retry.max_attempts",
            "greater than or equal to 1",
        ),
        (
            {"id": "b", "tool": "noop", "retry": {"backoff_s": 10, "max_backoff_s": 1}},
            "steps[1].retry",
            "max_backoff_s must not be below backoff_s",
        ),
        ({"id": "b", "tool": "noop", "timeout_s": 0}, "steps[1].timeout_s", "greater than 0"),
        ({"id": "b", "tool": "noop", "timeout_s": 99999}, "steps[1].timeout_s", "less than"),
        ({"id": "b"}, "steps[1]", "needs exactly one of"),
        ({"id": "b", "tool": "noop", "workflow": "y"}, "steps[1]", "found tool, workflow"),
        ({"id": "b", "robot": "summarizer"}, "steps[1].robot", "not available"),
        ({"id": "b", "tool": "noop", "colour": 1}, "steps[1].colour", "unknown field"),
        ({"id": "b", "tool": "noop", "with": {"bogus": 1}}, "steps[1].with.bogus", "takes no"),
        ({"id": "b", "tool": "json.extract", "with": {"data": 1}}, "steps[1].with", "needs 'path'"),
        ({"id": "b-c", "tool": "noop"}, "steps[1].id", "pattern"),
        (
            {"id": "b", "tool": "noop", "with": {"value": "{{ steps.zz.output }}"}},
            "steps[1].with.value",
            "unknown step 'zz'",
        ),
        (
            {"id": "b", "tool": "noop", "with": {"value": "{{ inputs.missing }}"}},
            "steps[1].with.value",
            "unknown input 'missing'",
        ),
        (
            {"id": "b", "tool": "noop", "with": {"value": "{{ item }}"}},
            "steps[1].with.value",
            "only defined in `with` of a foreach step",
        ),
        (
            {"id": "b", "tool": "noop", "with": {"value": "{{ os.system }}"}},
            "steps[1].with.value",
            "unknown name 'os'",
        ),
        (
            {"id": "b", "tool": "noop", "repeat": {"until": "true", "max": 0}},
            "steps[1].repeat.max",
            "greater than or equal to 1",
        ),
    ],
)
def test_step_rules_are_reported_at_their_path(step, path, fragment):
    details = errors_of({"slug": "x", "steps": [{"id": "a", "tool": "noop"}, step]})
    assert path in details, details
    assert any(fragment in message for message in details[path]), details[path]


def test_names_a_template_binds_itself_are_not_context_reads():
    spec, _ = spec_parse(
        {
            "slug": "x",
            "inputs": {"names": {"type": "array", "default": []}},
            "steps": [
                {
                    "id": "a",
                    "tool": "template.render",
                    "with": {
                        "template": "{% for n in inputs.names %}{{ loop.index }}:{{ n }}"
                        "{% endfor %}"
                    },
                }
            ],
        }
    )
    assert spec.steps[0].id == "a"


@pytest.mark.parametrize(
    ("step", "path"),
    [
        (
            {
                "id": "p",
                "tool": "noop",
                "repeat": {"until": "true", "max": 2},
                "set": {"n": "{{ iteration }}"},
            },
            "steps[0].set.n",
        ),
        ({"id": "p", "tool": "noop", "with": {"value": "{{ output }}"}}, "steps[0].with.value"),
        ({"id": "p", "tool": "noop", "foreach": "[1]", "when": "item > 0"}, "steps[0].when"),
    ],
)
def test_per_execution_names_are_only_allowed_where_they_are_defined(step, path):
    details = errors_of({"slug": "x", "steps": [step]})
    assert list(details) == [path]
    assert "is only defined in" in details[path][0]


def test_a_step_may_only_read_steps_that_run_before_it():
    details = errors_of(
        {
            "slug": "x",
            "steps": [
                {"id": "a", "tool": "noop", "needs": []},
                {"id": "b", "tool": "noop", "needs": [], "with": {"value": "{{ steps.a.output }}"}},
            ],
        }
    )
    assert details == {"steps[1].with.value": ["step 'a' does not run before 'b'; add it to needs"]}


def test_input_schema_is_checked():
    details = errors_of(
        {
            "slug": "x",
            "inputs": {"n": {"type": "number", "default": "five"}, "m": {"type": "int"}},
            "steps": [{"id": "a", "tool": "noop"}],
        }
    )
    assert details["inputs.n"] == ["default is not of type number"]
    assert "inputs.m.type" in details


def test_yaml_syntax_error_is_reported_on_spec():
    details = errors_of("slug: [unclosed")
    assert list(details) == ["spec"]


@pytest.mark.django_db
def test_unknown_sub_workflow_is_rejected_when_published_by_an_author(operator):
    with pytest.raises(InvalidInput) as caught:
        spec_parse({"slug": "x", "steps": [{"id": "a", "workflow": "ghost"}]}, author=operator)
    assert caught.value.details == {"steps[0].workflow": ["unknown workflow 'ghost'"]}


def test_run_inputs_get_defaults_and_each_bad_input_is_named():
    spec, _ = spec_parse(
        {
            "slug": "x",
            "inputs": {
                "doc": {"type": "string", "required": True},
                "budget": {"type": "number", "default": 0.5},
                "n": {"type": "integer"},
            },
            "steps": [{"id": "a", "tool": "noop"}],
        }
    )
    assert inputs_resolve(spec, {"doc": "d"}) == {"doc": "d", "budget": 0.5, "n": None}
    with pytest.raises(InvalidInput) as caught:
        inputs_resolve(spec, {"budget": "lots", "n": True, "extra": 1})
    assert caught.value.details == {
        "inputs.extra": "unknown input",
        "inputs.doc": "is required",
        "inputs.budget": "must be of type number",
        "inputs.n": "must be of type integer",
    }
