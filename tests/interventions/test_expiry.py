"""Interventions past their due time expire through the sweep, which applies `on_expiry` as the
system's answer and says so in the run's events and the audit log."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditEntry
from config.errors import Conflict, InvalidInput
from interventions.expiry import interventions_expire_due
from interventions.models import Intervention, Status
from interventions.services import intervention_resolve
from tests.interventions.conftest import waiting_on
from tests.interventions.test_flows import APPROVAL, CORRECTED, _step, _types
from workflows.engine import api
from workflows.models import RunEvent, RunStatus

pytestmark = pytest.mark.django_db


def _overdue(intervention: Intervention) -> None:
    Intervention.objects.filter(pk=intervention.pk).update(
        due_at=timezone.now() - timedelta(seconds=1)
    )


def _expiring(start, drain, on_expiry: str):
    run = start(APPROVAL.replace("on_expiry: reject", f"on_expiry: {on_expiry}"))
    drain()
    intervention = waiting_on(run)
    _overdue(intervention)
    return run, intervention


@pytest.mark.parametrize(
    ("on_expiry", "ran", "skipped"), [("approve", "pay", "refuse"), ("reject", "refuse", "pay")]
)
def test_an_approval_past_due_is_decided_by_its_on_expiry(start, drain, on_expiry, ran, skipped):
    run, intervention = _expiring(start, drain, on_expiry)

    assert interventions_expire_due() == 1
    drain()

    run.refresh_from_db()
    intervention.refresh_from_db()
    assert intervention.status == Status.EXPIRED and intervention.resolved_by is None
    assert intervention.resolution["decision"] == on_expiry
    assert run.status == RunStatus.COMPLETED
    assert _step(run, "ask").output["decision"] == on_expiry
    assert _step(run, "ask").output["resolved_by"] is None
    assert _step(run, ran).status == "SUCCEEDED" and _step(run, skipped) is None
    expired = RunEvent.objects.get(run=run, type="intervention.expired").payload
    assert (expired["on_expiry"], expired["decision"], expired["by"]) == (on_expiry, on_expiry, "")
    types = _types(run)
    assert types.index("intervention.expired") < types.index("step.succeeded")
    entry = AuditEntry.objects.get(action="intervention.expire", object_id=str(intervention.pk))
    assert entry.actor is None and entry.after["status"] == Status.EXPIRED


def test_an_intervention_that_expires_with_skip_skips_its_step(start, drain):
    run, _ = _expiring(start, drain, "skip")

    interventions_expire_due()
    drain()

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and _step(run, "ask").status == "SKIPPED"


def test_an_intervention_that_expires_with_abort_fails_its_step_and_the_run(start, drain):
    run, _ = _expiring(start, drain, "abort")

    interventions_expire_due()

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "abort by the system: no answer by" in run.error


def test_a_correction_approved_at_expiry_keeps_the_proposed_output(start, drain):
    run = start(CORRECTED.replace("prompt: Check", "due_in: 1h, on_expiry: approve, prompt: Check"))
    drain()
    _overdue(waiting_on(run))

    interventions_expire_due()
    drain()

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED and _step(run, "send").output == "Dear sir"


def test_without_on_expiry_a_due_time_is_a_target_and_the_intervention_stays_open(start, drain):
    run = start(APPROVAL.replace(", on_expiry: reject", ""))
    drain()
    intervention = waiting_on(run)
    _overdue(intervention)

    assert interventions_expire_due() == 0

    intervention.refresh_from_db()
    assert intervention.status == Status.OPEN


def test_an_intervention_not_yet_due_is_left_alone(start, drain):
    run = start(APPROVAL)
    drain()

    assert interventions_expire_due() == 0
    assert waiting_on(run).status == Status.OPEN


def test_a_late_answer_to_an_expired_intervention_gets_409(start, drain, pilot):
    run, intervention = _expiring(start, drain, "reject")
    interventions_expire_due()

    with pytest.raises(Conflict) as late:
        intervention_resolve(intervention_id=intervention.pk, user=pilot, decision="approve")

    assert late.value.code == "intervention_expired"
    assert Intervention.objects.get(pk=intervention.pk).resolution["decision"] == "reject"


def test_one_whose_step_moved_on_is_cancelled_rather_than_expired(start, drain):
    run, intervention = _expiring(start, drain, "approve")
    step = _step(run, "ask")
    api.step_skip(step_run_id=step.pk, ref=step.wait_ref, reason="moved on elsewhere")

    assert interventions_expire_due() == 0

    intervention.refresh_from_db()
    assert intervention.status == Status.CANCELLED
    assert not AuditEntry.objects.filter(action="intervention.expire").exists()


@pytest.mark.parametrize(
    ("fields", "path"),
    [
        ("human: {type: input, on_expiry: approve}", "steps[0].human.on_expiry"),
        ("human: {type: escalation, on_expiry: reject}", "steps[0].human.on_expiry"),
        ("tool: noop, review: {type: correction, on_expiry: reject}", "steps[0].review"),
        ("tool: noop, escalation: {on_expiry: approve}", "steps[0].escalation"),
    ],
)
def test_an_on_expiry_its_type_cannot_take_is_refused_at_publish(make_workflow, fields, path):
    with pytest.raises(InvalidInput) as refused:
        make_workflow(f"slug: bad\nsteps:\n  - {{id: a, {fields}}}\n")

    assert any(key.startswith(path) for key in refused.value.details), refused.value.details
