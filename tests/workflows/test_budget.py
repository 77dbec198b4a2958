"""Budgets through the engine's door: an attempt holds its worst case before spending and settles
to what it spent, so parallel steps never overshoot a run's budget and nothing stays held; and
events a plug-in's outcomes carry."""

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from pydantic import BaseModel, ConfigDict

from config.errors import InvalidInput
from tests.workflows.test_api import client_for
from workflows.engine import api
from workflows.engine.budget import holds_release_stale
from workflows.engine.runner import step_run_claim, step_run_record
from workflows.models import Run, RunStatus, StepRun, StepStatus

WORST, SPENT = Decimal("0.4"), Decimal("0.3")


class SpendFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spend: str


class Spend:
    """A leased kind that holds WORST of the budget, spends SPENT, and says so in an event."""

    kind, fields = "spend", SpendFields

    def validate(self, step, params, path, publishing):
        return []

    def runs_inline(self, step, params):
        return False

    def execute(self, context):
        if not api.budget_reserve(context, WORST):
            left = api.budget_left(context)
            raise api.Fail(f"budget left {left}, needed {WORST}", code="budget_exceeded",
                           retryable=False)  # fmt: skip
        api.budget_settle(context, WORST, SPENT)
        event = ("test.spent", {"usd": str(SPENT), "label": context.params.spend})
        return api.Done(output="spent", cost_usd=SPENT, events=(event,))


class Noisy:
    kind, fields = "noisy", BaseModel

    def validate(self, step, params, path, publishing):
        return []

    def runs_inline(self, step, params):
        return True

    def execute(self, context):
        return api.Done(events=(("test.unregistered", {}),))


class NoisyFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    noisy: bool


Noisy.fields = NoisyFields
api.executor_register(Spend())
api.executor_register(Noisy())
api.event_type_register("test.spent", "usd, label")

SPENDERS = """
slug: spenders
inputs: {n: {type: integer, default: 8}}
budget_usd: "{{ inputs.n / 8 }}"
steps:
  - id: each
    foreach: "range(inputs.n) | list"
    concurrency: 50
    spend: "each"
"""


def start(make_workflow, operator, source=SPENDERS, **kwargs) -> Run:
    run, _ = api.run_start(workflow=make_workflow(source), started_by=operator, **kwargs)
    return run


@pytest.mark.django_db
def test_a_run_spends_no_more_than_its_budget_and_holds_nothing_after(
    make_workflow, operator, drain
):
    run = start(make_workflow, operator, inputs={"n": 8})  # budget 1.0: 0.3 a call, 0.4 held

    drain()

    run.refresh_from_db()
    attempts = StepRun.objects.filter(run=run)
    assert run.budget_usd == Decimal("1")
    assert attempts.filter(status=StepStatus.SUCCEEDED).count() == 3
    refused = attempts.filter(error_code="budget_exceeded").first()
    assert "needed 0.4" in refused.error
    assert (run.cost_usd, run.reserved_usd) == (Decimal("0.9"), 0)
    assert set(attempts.values_list("reserved_usd", flat=True)) == {0}
    spent = run.events.filter(type="test.spent").values_list("payload", flat=True)
    assert list(spent)[0] == {"step": "each", "usd": "0.3", "label": "each"}


@pytest.mark.django_db(transaction=True)
def test_parallel_reservations_never_overshoot(make_workflow, operator):
    run = start(make_workflow, operator, inputs={"n": 20}, budget_usd=Decimal("1.0"))
    claims = [
        step_run_claim(run_id=run.pk, step_run_id=pk)
        for pk in StepRun.objects.filter(run=run).values_list("pk", flat=True)
    ]
    barrier, held = threading.Barrier(len(claims), timeout=30), []

    def reserve(claim):
        barrier.wait()
        try:
            if api.budget_reserve(claim.context, Decimal("0.2")):
                held.append(claim)
        finally:
            connection.close()

    threads = [threading.Thread(target=reserve, args=(claim,)) for claim in claims]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for claim in held:
        step_run_record(claim, api.Done(cost_usd=Decimal("0.2")))

    run.refresh_from_db()
    assert len(held) == 5
    assert (run.cost_usd, run.reserved_usd) == (Decimal("1.0"), 0)


@pytest.mark.django_db
def test_a_taken_over_attempt_s_hold_is_released_and_its_late_settle_changes_nothing(
    make_workflow, operator
):
    run = start(make_workflow, operator, inputs={"n": 1}, budget_usd=Decimal("1.0"))
    step_run = StepRun.objects.get(run=run)
    first = step_run_claim(run_id=run.pk, step_run_id=step_run.pk)
    assert api.budget_reserve(first.context, WORST)
    StepRun.objects.filter(pk=step_run.pk).update(lease_until=timezone.now() - timedelta(1))

    second = step_run_claim(run_id=run.pk, step_run_id=step_run.pk)
    api.budget_settle(first.context, WORST, SPENT)

    run.refresh_from_db()
    step_run.refresh_from_db()
    assert second.token != first.token
    assert (run.reserved_usd, step_run.reserved_usd) == (0, 0)


@pytest.mark.django_db
def test_an_outcome_with_an_unregistered_event_type_fails_the_step(make_workflow, operator, drain):
    run = start(make_workflow, operator, "slug: noisy\nsteps: [{id: loud, noisy: true}]", inputs={})

    drain()

    step_run = StepRun.objects.get(run=run)
    assert step_run.status == StepStatus.FAILED
    assert "event type 'test.unregistered' is not registered" in step_run.error


@pytest.mark.parametrize("name", ["spent", "run.spent", "step.x"])
def test_a_plugin_s_event_types_are_its_own(name):
    with pytest.raises(ValueError, match="must be '<plug-in>.<name>'"):
        api.event_type_register(name, "")


@pytest.mark.django_db
@pytest.mark.parametrize("budget", [Decimal("-1"), "{{ inputs.nope.deeper }}", "lots"])
def test_a_budget_that_is_not_a_sum_of_usd_is_refused_and_nothing_starts(
    make_workflow, operator, budget
):
    source = SPENDERS.replace('"{{ inputs.n / 8 }}"', "null")
    workflow = make_workflow(source)
    with pytest.raises(InvalidInput, match="budget_usd"):
        api.run_start(workflow=workflow, inputs={}, started_by=operator, budget_usd=budget)
    assert not Run.objects.filter(workflow=workflow).exists()


@pytest.mark.django_db
def test_the_api_starts_a_run_with_a_budget_and_shows_it(make_workflow, operator):
    make_workflow(SPENDERS)
    api_client = client_for(operator)

    response = api_client.post(
        "/api/workflows/spenders/runs/", {"inputs": {"n": 1}, "budget_usd": "2.5"}, format="json"
    )

    assert response.status_code == 201, response.json()
    assert response.json()["budget_usd"] == 2.5
    assert response.json()["status"] == RunStatus.RUNNING


def _timed_out_in_flight(make_workflow, operator):
    """A run with a budget whose one call holds 0.4 and timed out while still in flight."""
    retried = SPENDERS.replace(
        'spend: "each"',
        'spend: "each"\n    retry: {max_attempts: 2, backoff_s: 600, max_backoff_s: 600}',
    )
    run = start(make_workflow, operator, retried, inputs={"n": 1}, budget_usd=Decimal("1.0"))
    step_run = StepRun.objects.get(run=run)
    claim = step_run_claim(run_id=run.pk, step_run_id=step_run.pk)
    assert api.budget_reserve(claim.context, WORST)
    step_run_record(claim, api.Fail("timed out", code="timeout"), call_in_flight=True)
    return run, step_run


@pytest.mark.django_db
def test_a_hold_kept_for_a_call_in_flight_is_released_when_its_late_outcome_never_comes(
    make_workflow, operator
):
    run, step_run = _timed_out_in_flight(make_workflow, operator)
    step_run.refresh_from_db()
    assert step_run.reserved_usd == WORST  # kept: the call may still spend it

    assert holds_release_stale() == 0  # within the step's lease of its timeout
    assert run.status == RunStatus.RUNNING  # its retry waits its backoff
    assert holds_release_stale(now=step_run.finished_at + timedelta(hours=1)) == 1

    run.refresh_from_db()
    step_run.refresh_from_db()
    assert (run.reserved_usd, step_run.reserved_usd) == (0, 0)


@pytest.mark.django_db
def test_a_run_that_ends_gives_back_every_hold_its_step_runs_keep(make_workflow, operator):
    run = start(make_workflow, operator, SPENDERS.replace("range(inputs.n) | list", "[1, 2]"),
                inputs={}, budget_usd=Decimal("1.0"))  # fmt: skip
    first, second = StepRun.objects.filter(run=run).order_by("iteration")
    claim = step_run_claim(run_id=run.pk, step_run_id=first.pk)
    assert api.budget_reserve(claim.context, WORST)
    step_run_record(claim, api.Fail("timed out", code="timeout", retryable=False),
                    call_in_flight=True)  # fmt: skip

    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.reserved_usd == 0
    assert set(StepRun.objects.filter(run=run).values_list("reserved_usd", flat=True)) == {0}
