"""The spec fields that open interventions are checked at publish, each error with its path."""

import pytest

from config.errors import InvalidInput
from interventions.specs import duration

pytestmark = pytest.mark.django_db


def _errors(make_workflow, source) -> dict:
    with pytest.raises(InvalidInput) as refused:
        make_workflow(source)
    return refused.value.details


def test_durations_read_seconds_minutes_hours_and_days():
    assert [duration(text).total_seconds() for text in ("30s", "15m", "4h", "2d")] == [
        30, 900, 14400, 172800,
    ]  # fmt: skip
    with pytest.raises(ValueError, match="like 30s"):
        duration("4 hours")


@pytest.mark.parametrize(
    ("human", "path"),
    [
        ("{type: approval, due_in: soon}", "steps[1].human.due_in"),
        ("{type: vote}", "steps[1].human.type"),
        ("{type: input, form: {type: 12}}", "steps[1].human.form"),
        ("{type: approval, form: {type: object}}", "steps[1].human.form"),
        ("{type: input, approvals: 2}", "steps[1].human.approvals"),
        ("{type: approval, group: nobody-has-this}", "steps[1].human.group"),
        ("{type: approval, assignee: ghost}", "steps[1].human.assignee"),
        ('{type: approval, prompt: "{{ steps.later.output }}"}', "steps[1].human.prompt"),
        ("{type: approval, prompt: '{{ steps.first.output'}", "steps[1].human.prompt"),
    ],
)
def test_a_bad_human_step_is_refused_naming_its_field(make_workflow, human, path):
    source = f"slug: bad\nsteps:\n  - {{id: first, tool: noop}}\n  - id: ask\n    human: {human}\n"
    source += "  - {id: later, tool: noop}\n"

    assert path in _errors(make_workflow, source)


def test_a_bad_review_or_escalation_is_refused_naming_its_field(make_workflow):
    source = """slug: bad
steps:
  - id: a
    tool: noop
    review: {type: audit}
    escalation: {priority: whenever}
"""
    errors = _errors(make_workflow, source)

    assert {"steps[0].review.type", "steps[0].escalation.priority"} <= set(errors)


def test_a_human_prompt_reads_the_steps_before_it(start, drain):
    from tests.interventions.conftest import waiting_on

    run = start("""slug: risky
steps:
  - {id: risk, tool: noop, with: {value: {score: 0.8}}}
  - id: legal
    human: {type: approval, prompt: "Risk {{ steps.risk.output.score }}: approve?"}
""")
    drain()

    assert waiting_on(run).prompt == "Risk 0.8: approve?"
