"""Interventions in the admin (read-only, filtered) and in the metrics."""

import pytest

from interventions.models import Intervention
from interventions.services import intervention_comment, intervention_resolve
from tests.interventions.conftest import waiting_on
from tests.interventions.test_flows import APPROVAL, INPUT
from tests.test_metrics import sample

pytestmark = pytest.mark.django_db
ADMIN_URL = "/admin/interventions/intervention/"


def test_operators_see_interventions_read_only_in_the_admin_with_their_comments(
    client, start, drain, pilot, operator
):
    run = start(APPROVAL)
    drain()
    intervention = waiting_on(run)
    intervention_comment(intervention=intervention, user=pilot, text="Looking into it")
    operator.is_staff = True
    operator.save(update_fields=["is_staff"])
    client.force_login(operator)

    listing = client.get(f"{ADMIN_URL}?status__exact=OPEN&type__exact=approval&priority__exact=30")
    page = client.get(f"{ADMIN_URL}{intervention.pk}/change/")

    assert listing.status_code == 200 and "approve-or-not" in listing.content.decode()
    assert page.status_code == 200 and "Looking into it" in page.content.decode()
    assert b'name="_save"' not in page.content
    assert client.get(f"{ADMIN_URL}{intervention.pk}/delete/").status_code == 403
    assert client.get(f"{ADMIN_URL}add/").status_code == 403


def test_open_ones_are_counted_at_the_scrape_and_resolving_observes_the_time_taken(
    client, start, drain, pilot, make_user, django_capture_on_commit_callbacks
):
    start(APPROVAL)
    start(INPUT)
    drain()
    client.force_login(make_user(superuser=True))
    open_high = {"type": "approval", "priority": "high"}

    scraped = client.get("/metrics").content.decode()
    before = sample(scraped, "chameleon_intervention_resolve_seconds_count", type="approval")
    with django_capture_on_commit_callbacks(execute=True):
        approval = Intervention.objects.get(type="approval")
        intervention_resolve(intervention_id=approval.pk, user=pilot, decision="approve")
    after = client.get("/metrics").content.decode()

    assert sample(scraped, "chameleon_interventions_open", **open_high) == 1
    assert sample(scraped, "chameleon_interventions_open", type="input", priority="normal") == 1
    assert sample(after, "chameleon_interventions_open", **open_high) == 0
    assert sample(after, "chameleon_intervention_resolve_seconds_count", type="approval") == (
        before + 1
    )
