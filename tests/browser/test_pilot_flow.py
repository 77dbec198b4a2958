"""A pilot's day in the browser, against a real worker in another process: an intervention the
worker opens appears live in the queue, the pilot opens and answers it, and the run finishes
live on its page; viewers, pilots without permission and late answerers see what they should.

"Live" is checked as "without a reload": each page gets a mark in its window, which a reload
or a navigation would wipe, and the mark must still be there when the change shows."""

import pytest
from guardian.shortcuts import assign_perm
from playwright.sync_api import expect

from interventions.models import Intervention
from tests.browser.conftest import mark, not_reloaded, screenshot, signed_in
from tests.conftest import wait_for
from workflows.engine import api

pytestmark = pytest.mark.django_db(transaction=True)

APPROVAL = """
slug: pay-supplier
inputs: {supplier: {type: string}, amount: {type: number}}
steps:
  - id: check
    tool: noop
    with: {value: "{{ inputs.supplier }}"}
  - id: approve
    human: {type: approval, prompt: "Pay {{ inputs.supplier }} {{ inputs.amount }} EUR?",
            group: legal, due_in: 4h, priority: high, on_expiry: reject}
  - id: pay
    needs: [approve]
    when: "steps.approve.output.decision == 'approve'"
    tool: noop
    with: {value: "paid by {{ steps.approve.output.resolved_by }}"}
"""
INPUT = """
slug: copies-to-print
steps:
  - id: ask
    human:
      type: input
      prompt: How many copies?
      group: legal
      form:
        type: object
        required: [copies]
        properties: {copies: {type: integer, minimum: 1, title: Copies}}
  - {id: print, needs: [ask], tool: noop, with: {value: "{{ steps.ask.output.data.copies }}"}}
"""
INVOICES = [("Acme GmbH", 1200), ("Globex", 480), ("Initech", 9800)]


@pytest.fixture(autouse=True)
def _worker(celery_worker):
    """Every run here is executed by the real worker (in another process)."""


@pytest.fixture
def payments(make_workflow, legal):
    return make_workflow(APPROVAL)


def start(workflow, operator, supplier="Acme GmbH", amount=1200):
    return api.run_start(workflow=workflow, inputs={"supplier": supplier, "amount": amount},
                         started_by=operator)[0]  # fmt: skip


def opened(run) -> Intervention:
    """The run's intervention, once the worker has opened it."""
    found = Intervention.objects.filter(run_id=run.pk, status="OPEN")
    wait_for(found.exists, what=f"the intervention of run {run.pk}")
    return found.get()


def test_an_intervention_opened_on_the_worker_appears_live_and_its_answer_finishes_the_run_live(
    new_page, make_pilot, payments, operator
):
    pilot = make_pilot(payments)
    queue = signed_in(new_page, pilot)
    expect(queue.get_by_test_id("queue-empty")).to_be_visible()
    mark(queue)

    runs = [start(payments, operator, *invoice) for invoice in INVOICES]

    expect(queue.get_by_test_id("queue-row")).to_have_count(len(runs))
    assert not_reloaded(queue)
    screenshot(queue, "queue")

    first = queue.get_by_test_id("queue-row").first
    queue.keyboard.press("j")
    expect(first).to_have_attribute("aria-selected", "true")
    target = first.get_attribute("data-id")
    queue.keyboard.press("Enter")
    expect(queue).to_have_url(
        f"{queue.url.split('/dashboard/')[0]}/dashboard/interventions/{target}/"
    )
    intervention = Intervention.objects.get(pk=target)
    expect(queue.get_by_test_id("intervention-prompt")).to_have_text(intervention.prompt)
    screenshot(queue, "intervention")

    run_page = queue.context.new_page()  # the run, open in another tab
    run_page.goto(f"/dashboard/runs/{intervention.run_id}/")
    expect(run_page.get_by_test_id("run-status")).to_have_attribute("data-status", "WAITING")
    mark(run_page)

    queue.get_by_test_id("decide-approve").click()

    expect(queue.get_by_test_id("resolved-by")).to_have_text(pilot.username)
    status = run_page.get_by_test_id("run-status")
    expect(status).to_have_attribute("data-status", "COMPLETED")
    expect(status).to_have_text("Completed")  # the colour comes with its text
    pay = run_page.locator("[data-testid=step-row][data-step=pay]")
    expect(pay).to_have_attribute("data-status", "SUCCEEDED")
    assert not_reloaded(run_page)
    screenshot(run_page, "run")

    queue.get_by_role("link", name="Overview").click()
    expect(queue.get_by_test_id("overview-queue-total")).to_have_text(str(len(runs) - 1))
    mine = queue.locator(f"[data-testid=leaderboard-row][data-pilot={pilot.username}]")
    expect(mine.get_by_test_id("leaderboard-resolved")).to_have_text("1")
    screenshot(queue, "overview")


def test_a_viewer_sees_the_intervention_but_no_answer_form(new_page, make_user, payments, operator):
    viewer = make_user("viewer")
    assign_perm("view_workflow", viewer, payments)
    intervention = opened(start(payments, operator))
    page = signed_in(new_page, viewer)

    page.goto(f"/dashboard/interventions/{intervention.pk}/")

    expect(page.get_by_test_id("intervention-prompt")).to_have_text(intervention.prompt)
    expect(page.get_by_test_id("readonly-notice")).to_be_visible()
    expect(page.get_by_test_id("answer-form")).to_have_count(0)
    expect(page.get_by_test_id("decide-approve")).to_have_count(0)


SOCKET_OPENS = """path => new Promise(resolve => {
  const socket = new WebSocket(`ws://${location.host}${path}`);
  socket.onopen = () => { socket.close(); resolve("open"); };
  socket.onclose = () => resolve("refused");
})"""
EVENTS_SEEN = """() => { window.runsSeen = [];
  document.body.addEventListener("live", e => e.detail.events.forEach(x => runsSeen.push(x.run)));
}"""


def test_a_pilot_without_permission_sees_neither_the_item_nor_its_events(
    new_page, make_pilot, payments, operator
):
    allowed, stranger = make_pilot(payments), make_pilot()  # both in the intervention's group
    watching, shut_out = signed_in(new_page, allowed), signed_in(new_page, stranger)
    for page in (watching, shut_out):
        page.evaluate(EVENTS_SEEN)

    run = start(payments, operator)

    expect(watching.get_by_test_id("queue-row")).to_have_count(1)
    intervention = opened(run)
    assert str(run.pk) in watching.evaluate("runsSeen")
    assert shut_out.evaluate("runsSeen") == []
    shut_out.reload()
    expect(shut_out.get_by_test_id("queue-empty")).to_be_visible()
    for path in (f"/dashboard/runs/{run.pk}/", f"/dashboard/interventions/{intervention.pk}/"):
        assert shut_out.goto(path).status == 404
    shut_out.goto("/dashboard/")
    assert shut_out.evaluate(SOCKET_OPENS, f"/ws/runs/{run.pk}/") == "refused"
    assert watching.evaluate(SOCKET_OPENS, f"/ws/runs/{run.pk}/") == "open"


def test_a_second_pilot_answering_first_turns_the_first_pilots_page_read_only_live(
    new_page, make_pilot, payments, operator
):
    first, second = make_pilot(payments), make_pilot(payments)
    intervention = opened(start(payments, operator))
    url = f"/dashboard/interventions/{intervention.pk}/"
    slow, quick = signed_in(new_page, first), signed_in(new_page, second)
    slow.goto(url)
    expect(slow.get_by_test_id("answer-form")).to_be_visible()
    expect(slow.locator("#live-status")).to_have_text("Live")
    mark(slow)

    quick.goto(url)
    quick.get_by_test_id("decide-reject").click()
    expect(quick.get_by_test_id("resolved-by")).to_contain_text(second.username)

    expect(slow.get_by_test_id("readonly-notice")).to_contain_text(f"Answered by {second.username}")
    expect(slow.get_by_test_id("resolved-decision")).to_have_text("reject")
    expect(slow.get_by_test_id("answer-form")).to_have_count(0)
    assert not_reloaded(slow)


def test_an_answer_failing_its_form_schema_shows_the_field_error_and_submits_nothing(
    new_page, make_pilot, make_workflow, operator, legal
):
    copies = make_workflow(INPUT)
    pilot = make_pilot(copies)
    run = api.run_start(workflow=copies, inputs={}, started_by=operator)[0]
    intervention = opened(run)
    page = signed_in(new_page, pilot)
    page.goto(f"/dashboard/interventions/{intervention.pk}/")

    page.get_by_label("Copies").fill("0")
    page.get_by_test_id("decide-submit").click()

    error = page.locator("[data-testid=field-error][data-field='data.copies']")
    expect(error).to_be_visible()
    expect(error).to_contain_text("minimum")
    expect(page.get_by_label("Copies")).to_have_attribute("aria-invalid", "true")
    intervention.refresh_from_db()
    assert intervention.status == "OPEN" and intervention.resolution in (None, {})
