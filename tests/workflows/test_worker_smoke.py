import pytest

from tests.conftest import wait_for_run
from workflows.engine.runs import run_start
from workflows.models import RunStatus, StepRun

DIAMOND = """
slug: diamond
steps:
  - id: start
    tool: noop
    with: {value: 1}
  - id: left
    needs: [start]
    tool: noop
    with: {value: "{{ steps.start.output + 1 }}"}
  - id: right
    needs: [start]
    tool: noop
    with: {value: "{{ steps.start.output + 2 }}"}
  - id: join
    needs: [left, right]
    tool: noop
    with: {value: "{{ steps.left.output + steps.right.output }}"}
"""


@pytest.mark.django_db(transaction=True)
def test_run_completes_on_a_real_worker(celery_worker, make_workflow, operator):
    workflow = make_workflow(DIAMOND)

    run, _ = run_start(workflow=workflow, inputs={}, started_by=operator)

    run = wait_for_run(run)
    assert run.status == RunStatus.COMPLETED
    assert run.result["join"] == 5
    assert StepRun.objects.filter(run=run, step_id="join").count() == 1
