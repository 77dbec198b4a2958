"""A gate's Escalate (what guardians answer) opens an escalation; `retry` lets the held step run,
and a `human:` correction step proposes its input."""

import pytest
from pydantic import BaseModel, ConfigDict

from interventions.services import intervention_resolve
from tests.interventions.conftest import waiting_on
from workflows.engine import api
from workflows.models import RunStatus, StepRun

pytestmark = pytest.mark.django_db


class Hold(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str


class HoldingGate:
    name = "test-interventions-hold"

    def evaluate(self, check):
        hold = check.step.extension("test_hold")
        if hold is None:
            return None
        return api.Escalate(hold.reason, ref=f"hold:{check.step.id}", details={"score": 0.9})


api.step_field_register("test_hold", Hold)
api.gate_register(HoldingGate())

HELD = """
slug: held
steps:
  - id: risky
    tool: noop
    with: {value: done}
    test_hold: {reason: "score 0.9 is over 0.7"}
    escalation: {group: legal}
  - {id: after, needs: [risky], tool: noop, with: {value: "{{ steps.risky.output }}"}}
"""


def test_a_gate_s_escalation_opens_one_and_retry_runs_the_held_step(start, pilot, drain):
    run = start(HELD)
    drain()
    intervention = waiting_on(run)
    assert (intervention.type, intervention.wait_ref) == ("escalation", "hold:risky")
    assert intervention.context["message"] == "score 0.9 is over 0.7"
    assert intervention.context["details"] == {"score": 0.9}
    assert intervention.get_priority_display() == "high"  # an escalation's default

    intervention_resolve(intervention_id=intervention.pk, user=pilot, decision="retry")
    drain()

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and run.result["after"] == "done"
    assert StepRun.objects.get(run=run, step_id="risky", attempt=1).status == "SUCCEEDED"


CORRECTION_STEP = """
slug: human-correction
steps:
  - id: fix
    human: {type: correction, prompt: "Fix the address?", group: legal}
    with: {address: "1 Main St"}
  - {id: after, needs: [fix], tool: noop, with: {value: "{{ steps.fix.output.data }}"}}
"""


@pytest.mark.parametrize(
    ("answer", "data"),
    [({"decision": "confirm"}, {"address": "1 Main St"}),
     ({"decision": "edit", "output": {"address": "2 Main St"}}, {"address": "2 Main St"})],
)  # fmt: skip
def test_a_human_correction_step_proposes_its_input_for_confirming_or_editing(
    start, pilot, drain, answer, data
):
    run = start(CORRECTION_STEP)
    drain()
    intervention = waiting_on(run)
    assert intervention.context["proposed"] == {"address": "1 Main St"}

    intervention_resolve(intervention_id=intervention.pk, user=pilot, **answer)
    drain()

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and run.result["after"] == data
