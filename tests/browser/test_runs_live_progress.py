"""The runs list keeps a running run's progress and cost current: a step's completion or a new
cost reloads the table, paced by live.js (at most once every few seconds, and always once after
the last such event), though the run's status has not changed."""

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import mark, not_reloaded, signed_in
from tests.conftest import wait_for_run
from workflows.engine import api
from workflows.models import Run, RunStatus

pytestmark = pytest.mark.django_db(transaction=True)
WAITS = """
slug: long-haul
steps:
  - id: ask
    human: {type: approval, prompt: "Go on?", group: legal}
"""
# What live.js fires on <body> for a batch holding one event of `kind` (its flat flags).
FIRE = """([run, kind]) => {
  const detail = {events: [], resync: false, runs: {[run]: true}, interventions: {}};
  detail[kind.split("_")[0]] = detail[kind] = true;
  document.body.dispatchEvent(new CustomEvent("live", {detail: detail}));
}"""


def test_progress_and_cost_update_without_a_status_change_or_a_reload(
    new_page, make_pilot, make_workflow, operator, celery_worker
):
    workflow = make_workflow(WAITS)
    run = api.run_start(workflow=workflow, inputs={}, started_by=operator)[0]
    wait_for_run(run, statuses=[RunStatus.WAITING])
    page = signed_in(new_page, make_pilot(workflow))
    page.goto("/dashboard/runs/")
    row = page.locator(f"[data-testid=run-row][data-run='{run.pk}']")
    expect(row.get_by_test_id("run-progress")).to_have_text("0/1")
    mark(page)

    # the engine's counters move (as a step completing and a call's cost would move them)
    Run.objects.filter(pk=run.pk).update(progress_done=1)
    page.evaluate(FIRE, [str(run.pk), "step_completed"])
    expect(row.get_by_test_id("run-progress")).to_have_text("1/1")

    Run.objects.filter(pk=run.pk).update(cost_usd=Decimal("0.25"))
    page.evaluate(FIRE, [str(run.pk), "run_cost"])  # within the gap: the paced reload, later
    expect(row).to_contain_text("$0.25")
    assert not_reloaded(page)
