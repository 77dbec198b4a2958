"""Every dashboard page loads in the browser without a console error or an uncaught exception
(htmx reports a trigger filter it cannot compile as one, and a missing favicon as a 404), and a
part filtering the `live` event reloads only on the events it names."""

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import signed_in
from tests.browser.test_pilot_flow import APPROVAL, opened, start

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _worker(celery_worker):
    """The worker opens the run's intervention."""


def troubles(page: Page) -> list[str]:
    """What the page will log as an error or throw from now on, as it happens."""
    seen: list[str] = []
    page.on("console", lambda message: message.type == "error" and seen.append(message.text))
    page.on("pageerror", lambda error: seen.append(str(error)))
    return seen


def test_every_dashboard_page_loads_without_console_errors(
    new_page, make_pilot, make_workflow, operator
):
    payments = make_workflow(APPROVAL)
    pilot = make_pilot(payments)
    intervention = opened(start(payments, operator))
    page = new_page()
    seen = troubles(page)
    page.goto("/login/")
    page.wait_for_load_state("load")
    page = signed_in(lambda base_url=None: page, pilot)
    paths = {
        "queue": "/dashboard/",
        "intervention": f"/dashboard/interventions/{intervention.pk}/",
        "runs": "/dashboard/runs/",
        "run": f"/dashboard/runs/{intervention.run_id}/",
        "overview": "/dashboard/overview/",
    }

    for name, path in paths.items():
        page.goto(path)
        expect(page.locator("#live-status")).to_have_text("Live")
        page.wait_for_load_state("load")
        assert seen == [], f"the {name} page: {seen}"


COUNT_RELOADS = """detail => {
  let reloads = 0;
  const count = event => { if (event.detail.path.includes("part=")) reloads++; };
  document.body.addEventListener("htmx:configRequest", count);
  document.body.dispatchEvent(new CustomEvent("live", {detail: {
    events: [], resync: false, runs: {}, interventions: {}, ...detail}}));
  document.body.removeEventListener("htmx:configRequest", count);
  return reloads;
}"""


def test_a_live_event_the_queue_does_not_name_does_not_reload_its_table(
    new_page, make_pilot, make_workflow, operator
):
    queue = signed_in(new_page, make_pilot(make_workflow(APPROVAL)))
    queue.wait_for_load_state("networkidle")  # the catch-up after the socket opened is done

    # htmx configures a triggered request in the event's own dispatch, so counting around it
    # is exact; the matching event is the control that it does
    unnamed = queue.evaluate(COUNT_RELOADS, {"run": True, "run_status": True})
    named = queue.evaluate(COUNT_RELOADS, {"intervention": True, "intervention_opened": True})

    assert (unnamed, named) == (0, 1)
    expect(queue.get_by_test_id("queue-empty")).to_be_visible()
