"""The door's pieces for policy plug-ins (guardians): a plug-in field's own check at publish, a
gate's context with the steps its own rules read, and the sandboxed language's lone expressions."""

import pytest
from pydantic import BaseModel, ConfigDict, RootModel

from config.errors import InvalidInput
from workflows.engine import api
from workflows.models import RunStep

pytestmark = pytest.mark.django_db
checked: list = []


class Peek(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step: str
    over: float


def _peek_check(spec, step, value, path):
    checked.append((step.id, value.step, path))
    if value.step not in spec.graph.ancestors(step.id):
        return [api.SpecError(f"{path}.step", f"'{value.step}' does not run before '{step.id}'")]
    return []


def _marks_check(spec, step, value, path):
    checked.append((step, value.root, path))
    return [api.SpecError(path, "no 'x' marks") for mark in value.root if mark == "x"]


class PeekGate:
    """Blocks a step with `test_peek:` when the peeked step's output is over the limit; the
    peeked step is no step's template read, so only context_reading brings it."""

    name = "test-peek"

    def evaluate(self, check):
        peek = check.step.extension("test_peek")
        if peek is None:
            return None
        value = check.context_reading([peek.step])["steps"][peek.step]["output"]["n"]
        return api.Block(f"{value} over {peek.over}") if value > peek.over else api.Allow()


api.step_field_register("test_peek", Peek, validate=_peek_check)
api.workflow_field_register("test_marks", RootModel[list[str]], validate=_marks_check)
api.gate_register(PeekGate())

PEEKING = """
slug: peeking
test_marks: [a, b]
steps:
  - {id: count, tool: noop, with: {value: {n: 5}}}
  - {id: other, tool: noop, needs: [count]}
  - {id: gated, tool: noop, needs: [other], test_peek: {step: count, over: 3}}
"""


@pytest.fixture(autouse=True)
def _fresh():
    checked.clear()


def test_a_plugin_field_s_own_check_runs_at_publish_with_its_path(make_workflow):
    make_workflow(PEEKING)
    assert checked == [(None, ["a", "b"], "test_marks"), ("gated", "count", "steps[2].test_peek")]

    with pytest.raises(InvalidInput) as caught:
        make_workflow(
            PEEKING.replace("step: count", "step: later").replace("[a, b]", "[x]")
            + "  - {id: later, tool: noop}\n"
        )
    assert caught.value.details == {
        "test_marks": ["no 'x' marks"],
        "steps[2].test_peek.step": ["'later' does not run before 'gated'"],
    }


def test_a_check_is_not_asked_about_a_value_its_model_refuses(make_workflow):
    with pytest.raises(InvalidInput) as caught:
        make_workflow(PEEKING.replace("over: 3", "over: lots"))
    assert set(caught.value.details) == {"steps[2].test_peek.over"}
    assert checked == []


def test_a_gate_reads_the_steps_its_own_rules_name(make_workflow, operator, drain):
    run, _ = api.run_start(workflow=make_workflow(PEEKING), inputs={}, started_by=operator)
    drain()
    run.refresh_from_db()

    assert run.error == "5 over 3.0"
    assert RunStep.objects.get(run=run, step_id="gated").status == "FAILED"


def test_lone_expressions_are_checked_evaluated_and_say_what_they_read():
    with pytest.raises(api.TemplateError, match="syntax error"):
        api.expression_check("steps.a <")
    context = {"steps": {"a": {"output": {"n": 2}}}, "inputs": {"limit": 3}}

    assert api.expression_evaluate("steps.a.output.n < inputs['limit']", context) is True
    assert api.expression_paths("steps.a.output.n < inputs['limit'] and range(2)") == {
        ("steps", "a", "output", "n"),
        ("inputs", "limit"),
    }
    assert api.expression_paths("steps[inputs.k].output[0]") == {("steps",), ("inputs", "k")}
    assert api.expression_paths("inputs.name.upper() == inputs.xs[1:]") == {
        ("inputs", "name"),
        ("inputs", "xs"),
    }
