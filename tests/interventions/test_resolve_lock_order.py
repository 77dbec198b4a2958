"""A late outcome recorded for an escalated (WAITING) step run locks its step run, then its run;
answering the escalation at the same moment must take them in that order too (it took the run
first, for its event: a deadlock that PostgreSQL broke by killing one of them)."""

import threading
import time
from decimal import Decimal

import pytest
from django.db import connection

from interventions.services import intervention_resolve
from tests.interventions.conftest import waiting_on
from tests.interventions.test_flows import ESCALATING
from workflows.engine import runner
from workflows.engine.contract import Done
from workflows.models import StepRun

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_answer_racing_a_late_outcome_of_its_step_deadlocks_neither(
    start, drain, pilot, monkeypatch
):
    run = start(ESCALATING)
    drain()
    intervention = waiting_on(run)
    step_run = StepRun.objects.get(run=run, step_id="fetch", status="WAITING")
    claim = runner.Claim(
        run_id=str(run.pk),
        step_run_id=step_run.pk,
        token=step_run.claim,
        executor=None,
        context=None,
    )
    original = runner.cost_add
    holding = threading.Event()

    def slow_cost_add(unit, sr, cost):  # step run locked here; run not yet
        holding.set()
        time.sleep(1.0)  # the resolve takes the intervention and the run meanwhile
        return original(unit, sr, cost)

    monkeypatch.setattr(runner, "cost_add", slow_cost_add)
    errors = {}

    def late():
        try:
            runner.step_run_record(claim, Done({"x": 1}, cost_usd=Decimal("0.01")))
        except Exception as exc:
            errors["late"] = exc
        finally:
            connection.close()

    def resolve():
        holding.wait(5)
        time.sleep(0.2)
        try:
            intervention_resolve(intervention_id=intervention.pk, user=pilot, decision="skip")
        except Exception as exc:
            errors["resolve"] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=late), threading.Thread(target=resolve)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
