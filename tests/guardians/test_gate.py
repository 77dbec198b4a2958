"""Guardians before steps: block fails the step with the reason, route skips the branches not
named, escalate parks the step until someone moves it, every evaluation is a decision naming the
version that decided, and what a workflow names of guardians is checked at publish."""

import pytest
from prometheus_client import REGISTRY

from config.errors import InvalidInput
from guardians.models import GuardianDecision
from workflows.engine import api
from workflows.models import RunStatus, RunStep, StepRun, StepStatus

pytestmark = pytest.mark.django_db

SCORED = """
slug: scored
inputs: {{score: {{type: number, default: 0.5}}}}
{guards}steps:
  - {{id: risk, tool: noop, with: {{value: {{score: "{{{{ inputs.score }}}}"}}}}}}
  - {{id: decide, tool: noop, needs: [risk]{guard}}}
  - {{id: left, tool: noop, needs: [decide]}}
  - {{id: right, tool: noop, needs: [decide]}}
"""


def scored(guard: str = "", guards: str = "") -> str:
    return SCORED.format(guard=f", guard: [{guard}]" if guard else "",
                         guards=f"guards: [{guards}]\n" if guards else "")  # fmt: skip


@pytest.fixture
def confidence(guardian):
    return guardian("confidence", "CRITERIA_GATE", {
        "all": ["steps.risk.output.score < 0.7"], "else": "escalate"})  # fmt: skip


def _run(make_workflow, operator, drain, source, **inputs):
    workflow = make_workflow(source)
    run, _ = api.run_start(workflow=workflow, inputs=inputs, started_by=operator)
    drain()
    run.refresh_from_db()
    return run


def statuses(run) -> dict:
    return dict(RunStep.objects.filter(run=run).values_list("step_id", "status"))


def test_a_blocking_guardian_fails_the_step_with_its_reason(
    guardian, make_workflow, operator, drain
):
    guardian("confidence", "CRITERIA_GATE", {"all": ["steps.risk.output.score < 0.7"]})

    run = _run(make_workflow, operator, drain, scored(guard="confidence"), score=0.9)

    assert run.status == RunStatus.FAILED
    assert run.error == "guardian 'confidence': all[0] does not hold: steps.risk.output.score < 0.7"
    assert not StepRun.objects.filter(run=run, step_id="decide").exists()
    decision = GuardianDecision.objects.get(run_id=run.pk)
    assert (decision.step_id, decision.outcome, decision.evidence) == (
        "decide", "block", {"steps.risk.output.score": 0.9},
    )  # fmt: skip
    event = run.events.get(type="step.gate").payload
    assert event["details"]["decisions"] == [str(decision.pk)]


def test_a_route_runs_the_step_and_skips_the_branches_it_does_not_name(
    guardian, make_workflow, operator, drain
):
    guardian("by-score", "DIRECTIONAL_FILTER", {
        "rules": [{"when": "steps.risk.output.score >= 0.7", "route": ["left"]}],
        "default": ["right"],
    })  # fmt: skip

    high = _run(make_workflow, operator, drain, scored(guard="by-score"), score=0.9)
    low = api.run_start(workflow=high.workflow, inputs={"score": 0.1}, started_by=operator)[0]
    drain()

    assert high.status == RunStatus.COMPLETED
    assert statuses(high) == {"risk": "SUCCEEDED", "decide": "SUCCEEDED", "left": "SUCCEEDED",
                              "right": "SKIPPED"}  # fmt: skip
    assert statuses(low)["left"] == "SKIPPED" and statuses(low)["right"] == "SUCCEEDED"
    assert GuardianDecision.objects.get(run_id=high.pk).route == ["left"]


def test_an_escalation_parks_the_step_until_it_is_retried(
    confidence, make_workflow, operator, drain
):
    run = _run(make_workflow, operator, drain, scored(guard="confidence"), score=0.9)
    held = StepRun.objects.get(run=run, step_id="decide")
    decision = GuardianDecision.objects.get(run_id=run.pk)

    assert run.status == RunStatus.WAITING
    assert (held.status, held.wait_reason, held.wait_ref) == (
        StepStatus.WAITING, "escalated", f"guardian:confidence:{decision.pk}",
    )  # fmt: skip
    assert decision.outcome == "escalate"

    api.step_retry(step_run_id=held.pk, ref=held.wait_ref, by="pilot")
    drain()
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED


def test_an_escalated_step_can_be_given_an_output_instead(
    confidence, make_workflow, operator, drain
):
    run = _run(make_workflow, operator, drain, scored(guard="confidence"), score=0.9)
    held = StepRun.objects.get(run=run, step_id="decide")

    api.step_override(step_run_id=held.pk, ref=held.wait_ref, output={"ok": True}, by="pilot")
    drain()
    run.refresh_from_db()

    assert run.status == RunStatus.COMPLETED
    assert RunStep.objects.get(run=run, step_id="decide").output == {"ok": True}


def test_each_run_s_decisions_name_the_version_that_decided(
    confidence, republish, make_workflow, operator, drain
):
    first = _run(make_workflow, operator, drain, scored(guard="confidence"), score=0.5)
    loosened = republish(confidence, config={"all": ["steps.risk.output.score < 0.95"]})
    second = api.run_start(workflow=first.workflow, inputs={"score": 0.9}, started_by=operator)[0]
    drain()
    second.refresh_from_db()

    assert second.status == RunStatus.COMPLETED
    decided = dict(GuardianDecision.objects.values_list("run_id", "guardian_version__number"))
    assert decided == {first.pk: 1, second.pk: 2}
    assert loosened.number == 2


def test_workflow_guards_are_asked_before_every_step_and_counted(
    guardian, make_workflow, operator, drain, django_capture_on_commit_callbacks
):
    guardian("audit-point", "PASS_THRU")
    labels = {"kind": "PASS_THRU", "outcome": "allow"}
    before = REGISTRY.get_sample_value("chameleon_guardian_decisions_total", labels) or 0

    with django_capture_on_commit_callbacks(execute=True):  # counted once they commit
        run = _run(make_workflow, operator, drain, scored(guards="audit-point"))

    assert run.status == RunStatus.COMPLETED
    steps = GuardianDecision.objects.filter(run_id=run.pk).values_list("step_id", flat=True)
    assert sorted(steps) == ["decide", "left", "right", "risk"]
    after = REGISTRY.get_sample_value("chameleon_guardian_decisions_total", labels)
    assert after == before + 4


def test_a_guardian_that_fails_in_a_run_blocks_with_the_error_recorded(
    guardian, make_workflow, operator, drain
):
    guardian("broken", "CRITERIA_GATE", {"all": ["steps.risk.output.nothing > 1"]})

    run = _run(make_workflow, operator, drain, scored(guard="broken"))

    assert run.status == RunStatus.FAILED
    assert run.error.startswith("guardian 'broken': failed, so on_error applies (block)")
    assert "nothing" in GuardianDecision.objects.get(run_id=run.pk).error


def test_a_route_to_a_step_that_does_not_need_the_guarded_step_is_refused_at_publish(
    guardian, make_workflow
):
    guardian("astray", "DIRECTIONAL_FILTER", {"rules": [{"when": "true", "route": ["risk"]}]})
    guardian("heads", "CERBERUS", {"heads": ["left", "risk"], "agree_on": "score"})
    guardian("ahead", "CRITERIA_GATE", {"all": ["steps.right.output.ok", "steps.risk.output"]})

    with pytest.raises(InvalidInput) as caught:
        make_workflow(scored(guard="astray, heads, nobody, ahead", guards="astray"))

    assert caught.value.details == {
        "guards[0]": ["guardian 'astray' names the steps of one branch or join: use guard:"],
        "steps[1].guard[0]": ["guardian 'astray' routes to 'risk', which does not need 'decide'"],
        "steps[1].guard[1]": [
            "guardian 'heads' reads head 'left', which does not run before 'decide'"
        ],  # fmt: skip
        "steps[1].guard[2]": ["unknown guardian 'nobody'"],
        "steps[1].guard[3]": [
            "guardian 'ahead' reads steps.right, which does not run before 'decide'"
        ],  # fmt: skip
    }
