"""Each type of intervention end to end, in this process: what opens it, what its answer does
to the run (resolved through the service, as the API does)."""

import pytest

from accounts.models import AuditEntry
from config.errors import Conflict, InvalidInput
from interventions.models import Intervention, Status
from interventions.services import intervention_resolve
from tests.interventions.conftest import waiting_on
from workflows.engine import api
from workflows.models import RunEvent, RunStatus, StepRun

pytestmark = pytest.mark.django_db

APPROVAL = """
slug: approve-or-not
inputs: {amount: {type: number, default: 120}}
steps:
  - id: ask
    human: {type: approval, prompt: "Pay {{ inputs.amount }}?", group: legal, due_in: 4h,
            priority: high, on_expiry: reject}
  - id: pay
    needs: [ask]
    when: "steps.ask.output.decision == 'approve'"
    tool: noop
    with: {value: "paid by {{ steps.ask.output.resolved_by }}"}
  - id: refuse
    needs: [ask]
    when: "steps.ask.output.decision == 'reject'"
    tool: noop
    with: {value: "refused"}
"""


def _step(run, step_id) -> StepRun:
    return StepRun.objects.filter(run=run, step_id=step_id).order_by("-attempt").first()


def _types(run) -> list[str]:
    return list(RunEvent.objects.filter(run=run).order_by("seq").values_list("type", flat=True))


@pytest.mark.parametrize(
    ("decision", "ran", "skipped"), [("approve", "pay", "refuse"), ("reject", "refuse", "pay")]
)
def test_an_approval_s_decision_is_the_step_s_output_and_later_steps_branch_on_it(
    start, pilot, drain, decision, ran, skipped
):
    run = start(APPROVAL)
    drain()
    run.refresh_from_db()
    intervention = waiting_on(run)
    assert run.status == RunStatus.WAITING
    assert (intervention.type, intervention.prompt, intervention.group.name) == (
        "approval", "Pay 120?", "legal",
    )  # fmt: skip
    assert intervention.get_priority_display() == "high" and intervention.on_expiry == "reject"
    assert intervention.due_at is not None and intervention.context["inputs"] == {"amount": 120}

    intervention_resolve(intervention_id=intervention.pk, user=pilot, decision=decision,
                         comment="looked at it")  # fmt: skip
    drain()

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert _step(run, "ask").output == {
        "decision": decision,
        "data": None,
        "comment": "looked at it",
        "resolved_by": pilot.username,
    }
    assert _step(run, ran).status == "SUCCEEDED" and _step(run, skipped) is None
    intervention.refresh_from_db()
    assert (intervention.status, intervention.resolved_by, intervention.claimed_by) == (
        Status.RESOLVED, pilot, pilot,
    )  # fmt: skip
    types = _types(run)
    assert types.index("intervention.opened") < types.index("intervention.resolved")
    assert types.index("intervention.resolved") < types.index("step.succeeded")


TWO_APPROVERS = """
slug: two-approvers
steps:
  - id: ask
    human: {type: approval, prompt: "Sign off?", group: legal, approvals: 2}
  - {id: after, needs: [ask], tool: noop, with: {value: "{{ steps.ask.output.decision }}"}}
"""


def test_an_approval_of_two_needs_two_distinct_approvers(start, pilot, make_user, legal, drain):
    second = make_user("pilot")
    second.groups.add(legal)
    run = start(TWO_APPROVERS)
    drain()
    intervention = waiting_on(run)

    intervention_resolve(intervention_id=intervention.pk, user=pilot, decision="approve")
    with pytest.raises(Conflict) as again:
        intervention_resolve(intervention_id=intervention.pk, user=pilot, decision="approve")
    intervention.refresh_from_db()
    assert intervention.status == Status.OPEN and again.value.code == "already_approved"
    assert [approval["by"] for approval in intervention.approvals] == [pilot.username]

    intervention_resolve(intervention_id=intervention.pk, user=second, decision="approve")
    drain()

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and _step(run, "after").output == "approve"
    assert "intervention.approved" in _types(run)


def test_one_reject_decides_an_approval_of_several(start, pilot, drain):
    run = start(TWO_APPROVERS)
    drain()

    intervention_resolve(intervention_id=waiting_on(run).pk, user=pilot, decision="reject")
    drain()

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and _step(run, "after").output == "reject"


INPUT = """
slug: ask-for-input
steps:
  - id: details
    human:
      type: input
      prompt: Who signs?
      group: legal
      form:
        type: object
        required: [name]
        properties: {name: {type: string, minLength: 2}, copies: {type: integer}}
  - {id: after, needs: [details], tool: noop, with: {value: "{{ steps.details.output.data.name }}"}}
"""


def test_an_input_s_data_is_checked_against_its_form_and_becomes_the_output(start, pilot, drain):
    run = start(INPUT)
    drain()
    intervention = waiting_on(run)

    with pytest.raises(InvalidInput) as missing:
        intervention_resolve(intervention_id=intervention.pk, user=pilot, data={"copies": 2})
    with pytest.raises(InvalidInput) as wrong:
        intervention_resolve(intervention_id=intervention.pk, user=pilot,
                             data={"name": "Ada", "copies": "two"})  # fmt: skip
    assert list(missing.value.details) == ["data.name"]
    assert list(wrong.value.details) == ["data.copies"]
    with pytest.raises(InvalidInput) as undecided:
        intervention_resolve(intervention_id=intervention.pk, user=pilot, decision="approve")
    assert list(undecided.value.details) == ["decision"]

    intervention_resolve(intervention_id=intervention.pk, user=pilot, data={"name": "Ada"})
    drain()

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and _step(run, "after").output == "Ada"
    assert _step(run, "details").output["decision"] == "submit"


CORRECTED = """
slug: corrected
steps:
  - id: draft
    tool: noop
    with: {value: "Dear sir"}
    review: {type: correction, group: legal, prompt: Check the greeting}
  - {id: send, needs: [draft], tool: noop, with: {value: "{{ steps.draft.output }}"}}
"""


def test_a_correction_holds_the_step_and_an_edit_becomes_its_output(start, pilot, drain):
    run = start(CORRECTED)
    drain()
    intervention = waiting_on(run)
    assert (intervention.type, intervention.context["proposed"]) == ("correction", "Dear sir")
    assert _step(run, "send") is None

    with pytest.raises(InvalidInput) as no_output:
        intervention_resolve(intervention_id=intervention.pk, user=pilot, decision="edit")
    assert list(no_output.value.details) == ["output"]
    intervention_resolve(intervention_id=intervention.pk, user=pilot, decision="edit",
                         output="Dear Ada")  # fmt: skip
    drain()

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert _step(run, "draft").output == "Dear Ada" and _step(run, "send").output == "Dear Ada"


def test_a_confirmed_correction_keeps_the_output_proposed(start, pilot, drain):
    run = start(CORRECTED)
    drain()

    intervention_resolve(intervention_id=waiting_on(run).pk, user=pilot, decision="confirm")
    drain()

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and _step(run, "send").output == "Dear sir"


def test_a_review_is_recorded_without_holding_the_run(start, pilot, drain):
    run = start(CORRECTED.replace("type: correction", "type: review"))
    drain()

    run.refresh_from_db()
    intervention = waiting_on(run)  # still open after the run completed: nothing waits on it
    assert run.status == RunStatus.COMPLETED and _step(run, "send").output == "Dear sir"
    assert (intervention.type, intervention.wait_ref, intervention.context["output"]) == (
        "review", "", "Dear sir",
    )  # fmt: skip
    intervention_resolve(intervention_id=intervention.pk, user=pilot, decision="approve")
    intervention.refresh_from_db()
    assert intervention.status == Status.RESOLVED


ESCALATING = """
slug: escalating
steps:
  - id: fetch
    tool: json.extract
    with: {data: {}, path: price}
    retry: {max_attempts: 1}
    on_failure: escalate
    escalation: {group: legal, priority: urgent}
  - {id: after, needs: [fetch], tool: noop, with: {value: "{{ steps.fetch.output }}"}}
"""


def _escalated(start, drain):
    run = start(ESCALATING)
    drain()
    intervention = waiting_on(run)
    assert (intervention.type, intervention.get_priority_display()) == ("escalation", "urgent")
    assert "nothing at 'price'" in intervention.context["message"]
    return run, intervention


def test_an_escalation_overridden_gives_the_step_its_output(start, pilot, drain):
    run, intervention = _escalated(start, drain)

    intervention_resolve(intervention_id=intervention.pk, user=pilot, decision="override",
                         output=42)  # fmt: skip
    drain()

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and _step(run, "after").output == 42


def test_an_escalation_retried_runs_the_step_again(start, pilot, drain):
    run, first = _escalated(start, drain)

    intervention_resolve(intervention_id=first.pk, user=pilot, decision="retry")
    drain()

    again = waiting_on(run)  # the same failure, escalated again
    assert again.pk != first.pk and _step(run, "fetch").attempt == 2


def test_an_escalation_skipped_skips_the_step(start, pilot, drain):
    run, intervention = _escalated(start, drain)

    intervention_resolve(intervention_id=intervention.pk, user=pilot, decision="skip")
    drain()

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and _step(run, "fetch").status == "SKIPPED"


def test_an_escalation_aborted_fails_the_run(start, pilot, drain):
    run, intervention = _escalated(start, drain)

    intervention_resolve(intervention_id=intervention.pk, user=pilot, decision="abort",
                         comment="vendor gone")  # fmt: skip

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "abort by" in run.error


def test_cancelling_the_run_cancels_its_intervention_and_a_late_answer_gets_409(
    start, pilot, drain
):
    run = start(APPROVAL)
    drain()
    intervention = waiting_on(run)

    api.run_cancel(run_id=run.pk, reason="not needed")

    intervention.refresh_from_db()
    assert intervention.status == Status.CANCELLED
    assert "intervention.cancelled" in _types(run)
    assert AuditEntry.objects.filter(action="intervention.cancel",
                                     object_id=str(intervention.pk)).exists()  # fmt: skip
    with pytest.raises(Conflict) as late:
        intervention_resolve(intervention_id=intervention.pk, user=pilot, decision="approve")
    assert late.value.code == "intervention_cancelled"


def test_a_second_answer_to_a_resolved_intervention_gets_409_and_changes_nothing(
    start, pilot, drain
):
    run = start(APPROVAL)
    drain()
    intervention = waiting_on(run)
    intervention_resolve(intervention_id=intervention.pk, user=pilot, decision="approve")
    events = len(_types(run))

    with pytest.raises(Conflict) as late:
        intervention_resolve(intervention_id=intervention.pk, user=pilot, decision="reject")

    assert late.value.code == "intervention_resolved" and pilot.username in late.value.message
    intervention.refresh_from_db()
    assert intervention.resolution["decision"] == "approve" and len(_types(run)) == events


def test_an_answer_whose_step_moved_on_rolls_back_whole(start, pilot, drain):
    run = start(APPROVAL + "  - {id: meanwhile, needs: [], human: {type: review}}\n")
    drain()
    intervention = Intervention.objects.get(run_id=run.pk, step_id="ask")
    step = _step(run, "ask")
    api.step_skip(step_run_id=step.pk, ref=step.wait_ref, reason="moved on elsewhere")

    with pytest.raises(Conflict) as stale:
        intervention_resolve(intervention_id=intervention.pk, user=pilot, decision="approve")

    intervention.refresh_from_db()
    assert stale.value.code == "step_moved_on" and intervention.status == Status.OPEN
    assert not AuditEntry.objects.filter(action="intervention.resolve").exists()
