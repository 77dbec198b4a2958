"""Deliveries racing each other and a cancel, in threads of this process (no worker), through
PgBouncer."""

import threading
import time

import pytest
from pydantic import BaseModel, ConfigDict

from tests.workflows.test_durability import DIAMOND, step_run_of
from workflows.engine import api
from workflows.engine.finish import run_abort
from workflows.engine.runner import step_run_claim, step_run_execute, step_run_record
from workflows.engine.runs import run_start
from workflows.engine.unit import run_unit
from workflows.models import RunStep, StepRun
from workflows.tools.registry import tool

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("through_pgbouncer")]


class _NoParams(BaseModel):
    pass


_barrier = threading.Barrier(2, timeout=10)


@tool("test.barrier", _NoParams)
def _wait_at_barrier(params, context):
    """Return only when both branches are here, so they finish at the same instant."""
    _barrier.wait()
    return "done"


def test_two_branches_finishing_at_the_same_instant_start_the_join_exactly_once(
    make_workflow, operator
):
    workflow = make_workflow(DIAMOND.format(branch_tool="test.barrier"))
    run, _ = run_start(workflow=workflow, inputs={}, started_by=operator)
    step_run_execute(run_id=run.pk, step_run_id=step_run_of(run, "start").pk)
    branches = [step_run_of(run, "left"), step_run_of(run, "right")]
    outcomes = []

    def execute(step_run):
        from django.db import connection

        try:
            outcomes.append(step_run_execute(run_id=run.pk, step_run_id=step_run.pk))
        finally:
            connection.close()

    threads = [threading.Thread(target=execute, args=(branch,)) for branch in branches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)

    assert outcomes == ["succeeded", "succeeded"]
    assert StepRun.objects.filter(run=run, step_id="join").count() == 1
    assert run.events.filter(type="step.queued", payload__step="join").count() == 1


class _LeasedFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    test_leased: str


class _Leased:
    """A kind executed outside the engine's transaction, as outside calls are."""

    kind, fields = "test_leased", _LeasedFields

    def validate(self, step, params, path, publishing):
        return []

    def runs_inline(self, step, params):
        return False

    def execute(self, context):
        return api.Done({"ok": True})


api.executor_register(_Leased())
TWO_LEASED = """
slug: {slug}
steps:
  - {{id: a, test_leased: x}}
  - {{id: b, needs: [], test_leased: y}}
"""


def _while_the_run_is_held(run, hold, *recordings, cost_usd=0) -> dict:
    """Hold the run's lock in one thread (and do `hold` with it) while the claims are recorded
    in others, which read the run first and then wait for its lock."""
    from django.db import connection

    held, outcomes = threading.Event(), {}

    def holder():
        try:
            with run_unit(run.pk) as unit:
                held.set()
                time.sleep(1)
                hold(unit)
            outcomes["holder"] = "ok"
        finally:
            connection.close()

    def record(name, claim):
        held.wait(10)
        try:
            outcomes[name] = step_run_record(claim, api.Done({"ok": True}, cost_usd=cost_usd))
        finally:
            connection.close()

    threads = [threading.Thread(target=holder)]
    threads += [threading.Thread(target=record, args=item) for item in recordings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


def _claims(run) -> dict:
    return {
        sr.step_id: step_run_claim(run_id=run.pk, step_run_id=sr.pk, worker="test")
        for sr in StepRun.objects.filter(run=run)
    }


def test_a_step_finishing_while_its_run_is_cancelled_neither_deadlocks_nor_survives(
    make_workflow, operator
):
    run, _ = run_start(workflow=make_workflow(TWO_LEASED.format(slug="racing-cancel")),
                       inputs={}, started_by=operator)  # fmt: skip
    claims = _claims(run)

    outcomes = _while_the_run_is_held(
        run, lambda unit: run_abort(unit, "CANCELLED", reason="cancel"), ("a", claims["a"])
    )

    assert outcomes == {"holder": "ok", "a": "discarded"}
    run.refresh_from_db()
    assert (run.status, run.steps_busy) == ("CANCELLED", 0)
    assert set(RunStep.objects.filter(run=run).values_list("status", flat=True)) == {"CANCELLED"}


def test_parallel_steps_costs_add_up_and_each_event_states_the_run_s_total(make_workflow, operator):
    run, _ = run_start(workflow=make_workflow(TWO_LEASED.format(slug="racing-costs")),
                       inputs={}, started_by=operator)  # fmt: skip
    claims = _claims(run)

    outcomes = _while_the_run_is_held(run, lambda unit: None, *claims.items(), cost_usd=1)

    assert outcomes == {"holder": "ok", "a": "succeeded", "b": "succeeded"}
    run.refresh_from_db()
    assert run.cost_usd == 2
    totals = run.events.filter(type="run.cost").order_by("seq").values_list("payload", flat=True)
    assert [payload["cost_usd"] for payload in totals] == ["1.000000", "2.000000"]
