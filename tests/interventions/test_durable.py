"""A run waiting on a person outlives its workers: nothing is lost when one is killed."""

import pytest

from tests.conftest import WorkerProcess, wait_for_run
from tests.interventions.test_flows import APPROVAL
from tests.interventions.test_live import opened
from tests.workflows.test_api import client_for
from workflows.models import RunStatus

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_worker_killed_while_a_run_waits_loses_nothing(start, pilot, tmp_path):
    client = client_for(pilot)
    victim = WorkerProcess("victim", concurrency=1)
    try:
        run = start(APPROVAL)
        intervention = opened(client, "approve-or-not")
        wait_for_run(run, statuses=[RunStatus.WAITING])
    finally:
        victim.kill()

    answered = client.post(f"/api/interventions/{intervention['id']}/resolve/",
                           {"decision": "reject"}, format="json")  # fmt: skip
    assert answered.status_code == 200  # no worker is running: the next step waits in Redis
    rescuer = WorkerProcess("rescuer", concurrency=1, beat=True, tmp_path=tmp_path)
    try:
        run = wait_for_run(run, timeout=60)
    finally:
        rescuer.stop()

    assert run.status == RunStatus.COMPLETED
    assert run.result["refuse"] == "refused" and run.result["pay"] is None
