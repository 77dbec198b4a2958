"""Interventions with a real `celery worker` on real PostgreSQL and Redis: a run waits on a
person, the answer comes through the API, and the worker runs the rest."""

import pytest

from tests.conftest import wait_for, wait_for_run
from tests.interventions.test_flows import APPROVAL
from tests.workflows.test_api import client_for
from workflows.models import RunStatus

pytestmark = pytest.mark.django_db(transaction=True)


def opened(client, workflow: str) -> dict:
    """The run's intervention as the pilot's queue shows it, once the worker has opened it."""
    found = {}

    def listed():
        queue = client.get("/api/interventions/").json()["results"]
        found.update(next((item for item in queue if item["workflow"] == workflow), {}))
        return bool(found)

    wait_for(listed, what=f"an intervention of {workflow}")
    return found


def test_an_answer_through_the_api_resumes_the_run_on_the_worker(celery_worker, start, pilot):
    run = start(APPROVAL)
    client = client_for(pilot)
    intervention = opened(client, "approve-or-not")
    assert wait_for_run(run, statuses=[RunStatus.WAITING]).status == RunStatus.WAITING

    response = client.post(f"/api/interventions/{intervention['id']}/resolve/",
                           {"decision": "approve"}, format="json")  # fmt: skip

    assert response.status_code == 200
    run = wait_for_run(run)
    assert run.status == RunStatus.COMPLETED
    assert run.result["pay"] == f"paid by {pilot.username}" and run.result["refuse"] is None
