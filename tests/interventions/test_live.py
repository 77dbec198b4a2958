"""Interventions with a real `celery worker` on real PostgreSQL and Redis: a run waits on a
person, the answer comes through the API (or beat expires it), and the worker runs the rest."""

import pytest

from interventions.models import Intervention, Status
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


def test_beat_expires_an_unanswered_intervention_and_the_run_goes_on(celery_worker, start):
    run = start(APPROVAL.replace("due_in: 4h", "due_in: 1s"))  # on_expiry: reject

    run = wait_for_run(run)

    assert run.status == RunStatus.COMPLETED
    assert run.result["refuse"] == "refused" and run.result["pay"] is None
    assert Intervention.objects.get(run_id=run.pk).status == Status.EXPIRED
