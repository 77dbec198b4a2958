"""A webhook delivered by a real worker: POSTed with an Idempotency-Key, retried after a failure
with the same key and body, and recorded."""

import json

import pytest

from interventions.models import Notification
from tests.conftest import wait_for
from tests.interventions.conftest import waiting_on
from tests.interventions.test_notifications import _webhooked

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_webhook_that_fails_is_retried_with_the_same_key_until_it_is_received(
    celery_worker, start, http_server
):
    base_url, recorder = http_server
    recorder.status = 500
    run = start(_webhooked(f"{base_url}/hook"))

    wait_for(lambda: recorder.count("/hook") >= 1, what="the first delivery")
    recorder.status = 200
    sent = Notification.objects.filter(status=Notification.Status.SENT)
    wait_for(sent.exists, what="the delivery retried")

    notification = sent.get()
    first, second = recorder.requests
    assert first["headers"]["Idempotency-Key"] == second["headers"]["Idempotency-Key"]
    assert first["headers"]["Idempotency-Key"] == str(notification.pk)
    assert first["body"] == second["body"]
    assert (notification.event, notification.attempts, notification.error) == ("open", 2, "")
    body = json.loads(second["body"])
    intervention = waiting_on(run)
    assert body == {
        "id": str(intervention.pk),
        "event": "open",
        "type": "approval",
        "status": "OPEN",
        "priority": "high",
        "run": str(run.pk),
        "workflow": "approve-or-not",
        "step": "ask",
        "prompt": "Pay 120?",
        "due_at": intervention.due_at.isoformat(),
        "link": f"http://localhost:8000/api/interventions/{intervention.pk}/",
    }
