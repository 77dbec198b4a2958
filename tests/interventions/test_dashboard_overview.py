"""The overview (dashboard:overview): exact figures for a small known dataset, none of them
counting what the user may not view, charts drawn as SVG with their labels and numbers, and a
query count that does not grow with the data."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from guardian.shortcuts import assign_perm

from interventions.dashboard.charts import Bar, bar_chart
from interventions.dashboard.overview import overview_for
from interventions.models import Intervention, Priority
from workflows.engine import api
from workflows.models import Run

pytestmark = pytest.mark.django_db

FLOW = """
slug: {slug}
steps:
  - id: only
    tool: noop
    with: {{value: 1}}
"""
MIN = timedelta(minutes=1)


@pytest.fixture
def flows(make_workflow):
    return {slug: make_workflow(FLOW.format(slug=slug)) for slug in ("alpha", "beta", "foreign")}


@pytest.fixture
def watcher(make_user, flows):
    """A viewer of alpha and beta, not of foreign."""
    user = make_user("viewer")
    for slug in ("alpha", "beta"):
        assign_perm("workflows.view_workflow", user, flows[slug])
    return user


def _run(workflow, operator, *, cost: str, created_at=None) -> Run:
    run, _ = api.run_start(workflow=workflow, inputs={}, started_by=operator)
    changes = {"cost_usd": Decimal(cost)} | ({"created_at": created_at} if created_at else {})
    Run.objects.filter(pk=run.pk).update(**changes)
    return run


def _task(run: Run, *, priority=Priority.NORMAL, status="OPEN", opened=None, due=None,
          resolved=None, by=None) -> Intervention:  # fmt: skip
    return Intervention.objects.create(
        run_id=run.pk, step_run_id=1, step_id="only", workflow=run.workflow.slug,
        type="approval", source="human", priority=priority, status=status, due_at=due,
        created_at=opened or timezone.now(), resolved_at=resolved, resolved_by=by,
    )  # fmt: skip


@pytest.fixture
def dataset(flows, operator, make_user, drain):
    """Runs and interventions whose figures the tests know; foreign's must never count."""
    now = timezone.now()
    _run(flows["alpha"], operator, cost="0.30")
    drain()  # alpha's first run completes; the runs started after it stay RUNNING
    alpha = _run(flows["alpha"], operator, cost="0.05")
    beta = _run(flows["beta"], operator, cost="0.20")
    _run(flows["beta"], operator, cost="5.00", created_at=now - timedelta(days=1, hours=1))
    foreign = _run(flows["foreign"], operator, cost="9.99")

    _task(alpha, priority=Priority.URGENT, due=now - 60 * MIN)  # overdue
    _task(alpha, priority=Priority.HIGH, status="CLAIMED", due=now + 60 * MIN)
    _task(beta, opened=now - 5 * MIN)  # no due time
    _task(beta, due=now - 10 * MIN)  # overdue
    _task(foreign, priority=Priority.URGENT, due=now - 120 * MIN)

    ann, bob, carl = (make_user("pilot", username=name) for name in ("ann", "bob", "carl"))
    resolved = {"status": "RESOLVED"}
    # ann: 60 min (late), 10 min (on time), 30 min (no due time)
    _task(alpha, **resolved, by=ann, opened=now - 180 * MIN, resolved=now - 120 * MIN,
          due=now - 150 * MIN)  # fmt: skip
    _task(alpha, **resolved, by=ann, opened=now - 300 * MIN, resolved=now - 290 * MIN,
          due=now - 240 * MIN)  # fmt: skip
    _task(beta, **resolved, by=ann, opened=now - 60 * MIN, resolved=now - 30 * MIN)
    # bob: 20 min (on time), 60 min (no due time), and one before the window
    _task(beta, **resolved, by=bob, opened=now - 120 * MIN, resolved=now - 100 * MIN,
          due=now - 60 * MIN)  # fmt: skip
    _task(beta, **resolved, by=bob, opened=now - 360 * MIN, resolved=now - 300 * MIN)
    _task(beta, **resolved, by=bob, opened=now - timedelta(days=40),
          resolved=now - timedelta(days=40) + 5 * MIN, due=now - timedelta(days=41))  # fmt: skip
    # carl resolved only foreign's, late
    _task(foreign, **resolved, by=carl, opened=now - 60 * MIN, resolved=now - 59 * MIN,
          due=now - 90 * MIN)  # fmt: skip


def test_the_figures_are_exact_and_leave_out_what_the_user_may_not_view(dataset, watcher):
    figures = overview_for(user=watcher)

    assert dict(figures.runs_by_status) == {
        "PENDING": 0, "PLANNING": 0, "RUNNING": 3, "WAITING": 0, "COMPLETED": 1, "FAILED": 0,
        "CANCELLED": 0,
    }  # fmt: skip
    assert figures.queue_by_priority == [("urgent", 1), ("high", 1), ("normal", 2), ("low", 0)]
    assert figures.breached_open == 2
    assert [item.priority for item in figures.breaches_listed] == [Priority.URGENT, Priority.NORMAL]
    assert (figures.resolved_late, figures.resolved_in_window) == (1, 5)
    assert figures.cost_today == Decimal("0.55")
    assert figures.cost_by_workflow == [("alpha", Decimal("0.35")), ("beta", Decimal("0.20"))]
    board = [(r.username, r.resolved, r.median_s, r.on_time, r.with_due, r.sla_hit_rate)
             for r in figures.leaderboard]  # fmt: skip
    assert board == [("ann", 3, 1800.0, 1, 2, 0.5), ("bob", 2, 2400.0, 1, 1, 1.0)]


def test_someone_who_may_view_no_workflow_sees_only_zeros(dataset, make_user):
    figures = overview_for(user=make_user("viewer"))

    assert sum(n for _, n in figures.runs_by_status) == 0
    assert sum(n for _, n in figures.queue_by_priority) == 0
    assert (figures.breached_open, figures.resolved_late, figures.cost_today) == (0, 0, 0)
    assert figures.cost_by_workflow == [] and figures.leaderboard == []


def test_who_may_view_every_workflow_sees_foreign_s_figures_too(dataset, operator):
    figures = overview_for(user=operator)

    assert figures.breached_open == 3 and figures.cost_today == Decimal("10.54")
    assert [row.username for row in figures.leaderboard] == ["ann", "bob", "carl"]


def test_the_page_shows_the_figures_as_text_and_svg_bar_charts(dataset, watcher, client):
    client.force_login(watcher)

    page = client.get(reverse("dashboard:overview"))

    html = page.content.decode()
    assert page.status_code == 200 and 'data-live="/ws/feed/"' in html
    assert 'data-testid="overview-cost-today">$0.55<' in html
    assert 'data-testid="overview-breached-open">2<' in html
    assert 'data-testid="overview-resolved-late">1<' in html
    assert 'data-testid="overview-queue-total">4<' in html
    for testid in ("chart-runs-by-status", "chart-queue", "chart-cost-by-workflow"):
        assert (
            '<svg class="chart" role="img" aria-label="' in html
            and f'data-testid="{testid}"' in html
        )
    assert 'data-label="Urgent" data-value="1"' in html and ">Running</text>" in html
    assert 'data-label="alpha" data-value="$0.35"' in html and ">$0.35</text>" in html
    assert "foreign" not in html and "carl" not in html
    assert html.count('data-testid="leaderboard-row"') == 2
    assert 'data-pilot="ann"' in html and ">30 min 00 s<" in html and "50%" in html
    assert html.count('data-testid="overview-breach"') == 2
    # the figures reload themselves, paced (static/dashboard/live.js's live-paced)
    assert 'hx-trigger="live-paced"' in html
    assert 'data-live-on="resync run intervention" data-live-gap-ms="3000"' in html
    part = client.get(reverse("dashboard:overview"), {"part": "figures"}).content.decode()
    assert "<html" not in part and 'data-testid="overview-cost-today"' in part


@pytest.mark.parametrize("copies", [1, 12])
def test_the_overview_costs_a_bounded_number_of_queries_whatever_the_data(
    flows, operator, watcher, make_user, client, copies, django_assert_max_num_queries
):
    now = timezone.now()
    pilots = [make_user("pilot") for _ in range(copies)]
    for pilot in pilots:
        for slug in ("alpha", "beta"):
            run = _run(flows[slug], operator, cost="0.01")
            _task(run, due=now - MIN)
            _task(run, status="RESOLVED", by=pilot, opened=now - 9 * MIN, resolved=now, due=now)
    client.force_login(watcher)

    with django_assert_max_num_queries(12):
        page = client.get(reverse("dashboard:overview"))

    assert page.context["figures"].breached_open == 2 * copies


def test_a_bar_chart_writes_each_label_and_number_and_cuts_long_labels_short():
    chart = bar_chart(
        [Bar("a-workflow-with-a-long-slug", 3, "$0.30"), Bar("short", 0, "$0.00")],
        title="Cost", testid="chart-cost",
    )  # fmt: skip

    assert "<title>Cost</title>" in chart and 'data-testid="chart-cost"' in chart
    assert ">a-workflow-with-a…</text>" in chart  # the full label on hover:
    assert "<title>a-workflow-with-a-long-slug: $0.30</title>" in chart
    assert ">$0.30</text>" in chart and ">$0.00</text>" in chart and 'width="0.0"' in chart
    assert 'width="0.0"' in bar_chart([Bar("none", 0, "0")], title="t", testid="t")  # all zero
