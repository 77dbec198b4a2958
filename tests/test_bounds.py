"""Hostile input is a fast 400 naming what is wrong, before any work is done on it."""

import json

import pytest
import yaml

from config.errors import InvalidInput
from tests.workflows.test_api import client_for
from workflows.spec import MAX_STEPS, spec_parse

pytestmark = pytest.mark.django_db


def refusal(source) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        spec_parse(source)
    return caught.value


def test_a_spec_over_the_step_limit_is_refused_before_its_steps_are_validated():
    steps = [{"id": f"s{i}", "tool": "nope", "needs": ["ghost"]} for i in range(4 * MAX_STEPS)]

    as_yaml = refusal(yaml.safe_dump({"slug": "huge", "steps": steps})).details
    as_json = refusal({"slug": "huge", "steps": steps}).details  # the API's JSON object

    assert as_yaml == {"steps": f"has more than {MAX_STEPS} items"}
    assert as_json == {"steps": [f"at most {MAX_STEPS} steps (this spec has {4 * MAX_STEPS})"]}


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 10)}]\n"
    for previous, name in zip("abcdef", "bcdefg", strict=True)
)


def test_a_yaml_alias_bomb_is_refused_before_it_expands():
    assert len(ALIAS_BOMB) < 600  # stands for 10^7 nodes
    assert "aliases expand to more than" in refusal(ALIAS_BOMB).details["spec"]


def test_yaml_aliases_that_stay_small_still_work():
    source = "slug: dry\nsteps:\n  - &step {id: a, tool: noop}\n  - {<<: *step, id: b}\n"
    spec, _ = spec_parse(source)
    assert [step.id for step in spec.steps] == ["a", "b"]


@pytest.mark.parametrize(
    "source",
    ["slug: x\nsteps: " + "[" * 10_000 + "]" * 10_000, "x: &x [*x]\n"],
    ids=["nested 10,000 deep", "an alias inside itself"],
)
def test_yaml_too_deep_or_referring_to_itself_is_a_400(source):
    assert refusal(source).details


def test_nul_characters_in_a_yaml_spec_are_refused_with_their_path():
    details = refusal('slug: x\nname: "a\\0b"\nsteps: [{id: a, tool: noop}]\n').details
    assert details == {"spec.name": "contains a NUL character"}


def error_of(response, status: int) -> dict:
    assert response.status_code == status, response.content[:300]
    return response.json()["error"]


def test_json_nested_thousands_deep_in_a_body_is_a_400(operator):
    body = '{"spec": ' + "[" * 50_000 + "]" * 50_000 + "}"
    response = client_for(operator).post("/api/workflows/", body, content_type="application/json")
    assert error_of(response, 400)["code"] == "parse_error"


@pytest.mark.parametrize(
    ("body", "path", "problem"),
    [
        ({"inputs": {"x": "a\x00b"}}, "body.inputs.x", "contains a NUL character"),
        ({"inputs": {}, "ctx": {"k\x00": 1}}, "body.ctx.k\x00", "contains a NUL character"),
        ({"inputs": {}, "idempotency_key": "\ud800"}, "body.idempotency_key", "lone surrogate"),
        ({"inputs": {"deep": json.loads("[" * 100 + "]" * 100)}}, "body.inputs.deep", "deeper"),
    ],
)
def test_hostile_characters_and_shapes_in_a_run_start_are_a_400_naming_the_field(
    operator, make_workflow, body, path, problem
):
    make_workflow("slug: target\nsteps:\n  - id: a\n    tool: noop\n")
    encoded = json.dumps(body)  # \\u escapes: what a hostile client sends

    response = client_for(operator).post(
        "/api/workflows/target/runs/", encoded, content_type="application/json"
    )

    details = error_of(response, 400)["details"]
    assert [key for key in details if key.startswith(path)], details
    assert problem in str(details)
