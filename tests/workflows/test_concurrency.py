"""Two branches finishing at the same instant, in two threads of this process (no worker)."""

import threading

import pytest
from pydantic import BaseModel

from tests.workflows.test_durability import DIAMOND, step_run_of
from workflows.engine.runner import step_run_execute
from workflows.engine.runs import run_start
from workflows.models import StepRun
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
