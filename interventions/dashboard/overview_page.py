"""The overview page (dashboard:overview): the figures of interventions.dashboard.overview as
numbers, tables and server-drawn bar charts; `?part=figures` is what its live element reloads."""

from django.shortcuts import render
from django.utils import timezone

from accounts.sessions import dashboard_login_required
from interventions.dashboard.charts import Bar, bar_chart
from interventions.dashboard.overview import LEADERBOARD_DAYS, Overview, overview_for
from workflows.formats import usd

RUN_TONES = {"RUNNING": "info", "WAITING": "warn", "COMPLETED": "ok", "FAILED": "bad"}
PRIORITY_TONES = {"urgent": "bad", "high": "warn", "normal": "info"}


@dashboard_login_required
def overview(request):
    figures = overview_for(user=request.user)
    context = {
        "figures": figures,
        "charts": _charts(figures),
        "queue_total": sum(n for _, n in figures.queue_by_priority),
        "window_days": LEADERBOARD_DAYS,
        "tz": timezone.get_current_timezone_name(),
    }
    if request.GET.get("part") == "figures":
        return render(request, "dashboard/parts/overview_figures.html", context)
    return render(request, "dashboard/overview.html", context)


def _charts(figures: Overview) -> dict:
    runs = [
        Bar(status.capitalize(), n, str(n), RUN_TONES.get(status, ""))
        for status, n in figures.runs_by_status
    ]
    queue = [
        Bar(label.capitalize(), n, str(n), PRIORITY_TONES.get(label, ""))
        for label, n in figures.queue_by_priority
    ]
    costs = [Bar(slug, float(cost), usd(cost), "info") for slug, cost in figures.cost_by_workflow]
    return {
        "runs": bar_chart(runs, title="Runs by status", testid="chart-runs-by-status"),
        "queue": bar_chart(queue, title="Open interventions by priority", testid="chart-queue"),
        "costs": bar_chart(costs, title="Cost today by workflow", testid="chart-cost-by-workflow"),
    }
