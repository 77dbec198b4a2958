"""A run's dashboard page links a step run waiting on a person to its intervention's page, and
stops once the intervention is answered."""

import pytest
from django.urls import reverse

from interventions.services import intervention_resolve
from tests.interventions.conftest import waiting_on

pytestmark = pytest.mark.django_db

SIGN_OFF = """
slug: sign-off
steps:
  - id: sign
    human: {type: approval, prompt: "Sign off?", group: legal}
"""


def test_the_waiting_step_s_row_links_to_its_open_intervention(start, pilot, client, drain):
    run = start(SIGN_OFF)
    drain()
    intervention = waiting_on(run)
    client.force_login(pilot)
    url = reverse("dashboard:run", args=[run.pk])

    waiting = client.get(url, {"part": "steps"}).content.decode()
    intervention_resolve(intervention_id=intervention.pk, user=pilot, decision="approve")
    drain()
    answered = client.get(url, {"part": "steps"}).content.decode()

    page = reverse("dashboard:intervention", args=[intervention.pk])
    link = f'<a href="{page}" data-testid="step-link">Open approval</a>'
    assert link in waiting and 'data-status="WAITING"' in waiting
    assert 'data-testid="step-link"' not in answered
