"""Answers at the same moment (or an answer and the expiry), on real transactions in threads:
exactly one wins."""

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import AuditEntry
from config.errors import Conflict
from interventions.expiry import intervention_expire, interventions_expire_due
from interventions.models import Intervention, Status
from interventions.services import intervention_resolve
from tests.interventions.conftest import waiting_on
from tests.interventions.test_flows import APPROVAL, ESCALATING
from tests.workflows.test_api import client_for
from workflows.engine import api, runner
from workflows.engine.contract import Done
from workflows.models import Run, RunStatus, StepRun

pytestmark = pytest.mark.django_db(transaction=True)


def _together(*calls) -> list:
    """Run the calls at once, each on its own thread and connection; return their results."""
    barrier, results = threading.Barrier(len(calls), timeout=10), [None] * len(calls)

    def call(index, function):
        try:
            barrier.wait()
            results[index] = function()
        except Conflict as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=call, args=item) for item in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_two_answers_at_once_one_gets_200_and_the_other_409(start, drain, pilot, operator):
    run = start(APPROVAL)
    drain()
    intervention = waiting_on(run)
    url = f"/api/interventions/{intervention.pk}/resolve/"

    def answer(user, decision):
        client = client_for(user)
        client.get(url)  # its middleware loaded here: django-prometheus' is not thread-safe
        return lambda: client.post(url, {"decision": decision}, format="json")

    responses = _together(answer(pilot, "approve"), answer(operator, "reject"))

    codes = sorted(response.status_code for response in responses)
    assert codes == [200, 409]
    won = next(response for response in responses if response.status_code == 200).json()
    intervention.refresh_from_db()
    assert intervention.resolution["decision"] == won["resolution"]["decision"]
    step = StepRun.objects.get(run=run, step_id="ask")
    assert step.output["decision"] == won["resolution"]["decision"]


def test_an_answer_racing_the_run_s_cancel_leaves_one_outcome(start, drain, pilot):
    run = start(APPROVAL)
    drain()
    intervention = waiting_on(run)

    outcomes = _together(
        lambda: intervention_resolve(intervention_id=intervention.pk, user=pilot,
                                     decision="approve"),
        lambda: api.run_cancel(run_id=run.pk),
    )  # fmt: skip

    intervention.refresh_from_db()
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    if isinstance(outcomes[0], Conflict):
        assert intervention.status == Status.CANCELLED
    else:
        assert intervention.status == Status.RESOLVED


def test_an_answer_held_while_its_run_ends_cancels_it_and_gets_409(start, drain, pilot):
    run = start(APPROVAL)
    drain()
    intervention = waiting_on(run)
    held, cancelled = threading.Event(), threading.Event()

    def hold():  # as a resolution in progress does: the row locked
        try:
            with transaction.atomic():
                Intervention.objects.select_for_update().get(pk=intervention.pk)
                held.set()
                cancelled.wait(timeout=10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(timeout=10)
    api.run_cancel(run_id=run.pk)  # skips the held row instead of waiting for it
    cancelled.set()
    holder.join(timeout=10)
    assert Intervention.objects.get(pk=intervention.pk).status == Status.OPEN

    with pytest.raises(Conflict) as late:
        intervention_resolve(intervention_id=intervention.pk, user=pilot, decision="approve")

    assert late.value.code == "run_finished"
    assert Intervention.objects.get(pk=intervention.pk).status == Status.CANCELLED
    assert Run.objects.get(pk=run.pk).status == RunStatus.CANCELLED


def test_an_answer_racing_the_expiry_leaves_exactly_one_outcome(start, drain, pilot):
    run = start(APPROVAL)  # on_expiry: reject
    drain()
    intervention = waiting_on(run)
    Intervention.objects.filter(pk=intervention.pk).update(due_at=timezone.now())

    answered, expired = _together(
        lambda: intervention_resolve(intervention_id=intervention.pk, user=pilot,
                                     decision="approve"),
        lambda: intervention_expire(intervention_id=intervention.pk),
    )  # fmt: skip

    intervention.refresh_from_db()
    step = StepRun.objects.get(run=run, step_id="ask")
    if isinstance(answered, Conflict):  # the expiry won; the answer waited for it and lost
        assert expired is True and answered.code == "intervention_expired"
        assert (intervention.status, step.output["decision"]) == (Status.EXPIRED, "reject")
    else:  # the answer won; the expiry skipped the row it held
        assert expired is False
        assert (intervention.status, step.output["decision"]) == (Status.RESOLVED, "approve")
    entries = AuditEntry.objects.filter(object_id=str(intervention.pk))
    outcomes = entries.filter(action__in=["intervention.resolve", "intervention.expire"])
    assert outcomes.count() == 1


def test_the_expiry_skips_an_intervention_an_answer_holds(start, drain):
    run = start(APPROVAL)
    drain()
    intervention = waiting_on(run)
    Intervention.objects.filter(pk=intervention.pk).update(due_at=timezone.now())
    held, done = threading.Event(), threading.Event()

    def hold():
        try:
            with transaction.atomic():
                Intervention.objects.select_for_update().get(pk=intervention.pk)
                held.set()
                done.wait(timeout=10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(timeout=10)
    try:
        assert interventions_expire_due() == 0  # at once, without waiting for the holder
    finally:
        done.set()
        holder.join(timeout=10)
    assert interventions_expire_due() == 1


def test_the_expiry_racing_a_late_outcome_of_its_step_deadlocks_neither(start, drain, monkeypatch):
    run = start(ESCALATING.replace("priority: urgent}", "priority: urgent, on_expiry: skip}"))
    drain()
    intervention = waiting_on(run)
    Intervention.objects.filter(pk=intervention.pk).update(due_at=timezone.now())
    step_run = StepRun.objects.get(run=run, step_id="fetch", status="WAITING")
    claim = runner.Claim(run_id=str(run.pk), step_run_id=step_run.pk, token=step_run.claim,
                         executor=None, context=None)  # fmt: skip
    original, holding = runner.cost_add, threading.Event()

    def slow_cost_add(unit, held, cost):  # the step run locked here, its run not yet
        holding.set()
        time.sleep(1.0)  # the expiry takes the intervention meanwhile
        return original(unit, held, cost)

    monkeypatch.setattr(runner, "cost_add", slow_cost_add)

    def late():
        runner.step_run_record(claim, Done({"x": 1}, cost_usd=Decimal("0.01")))
        return "recorded"

    def expire():
        holding.wait(5)
        time.sleep(0.2)
        return intervention_expire(intervention_id=intervention.pk)

    outcomes = _together(late, expire)

    assert outcomes == ["recorded", True]  # the late outcome, then the expiry (no deadlock)
    assert Intervention.objects.get(pk=intervention.pk).status == Status.EXPIRED
    assert StepRun.objects.get(pk=step_run.pk).status == "SKIPPED"
