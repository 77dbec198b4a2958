"""A run's age on the runs list stays true while the page stays open: "just now" at first,
then minutes, without a reload (the page's clock is Playwright's, moved on by hand)."""

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import mark, not_reloaded, signed_in
from tests.browser.test_pilot_flow import APPROVAL, start

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _worker(celery_worker):
    """The run is executed, not left queued for another test's worker."""


def test_a_run_s_age_goes_from_just_now_to_minutes_ago_without_a_reload(
    new_page, make_pilot, make_workflow, operator
):
    payments = make_workflow(APPROVAL)
    run = start(payments, operator)
    page = signed_in(new_page, make_pilot(payments))
    page.clock.install()
    page.goto("/dashboard/runs/")
    age = page.locator(f"[data-testid=run-row][data-run='{run.pk}'] time[data-age]")
    expect(age).to_have_text("just now")
    mark(page)

    page.clock.fast_forward("03:00")

    expect(age).to_have_text("3 minutes ago")
    assert not_reloaded(page)
