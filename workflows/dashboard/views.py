"""The dashboard's run pages: the list of runs, a run's page, and the plug-ins' panels about a
run. Views parse, check visibility (404 for what a user may not view) and render; a page's live
parts reload themselves through `?part=`."""

from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils.http import urlencode

from accounts.sessions import dashboard_login_required
from config.errors import NotFound
from workflows import selectors
from workflows.dashboard.listing import RunsFilter, runs_page, workflow_choices
from workflows.dashboard.panels import panel_body, panel_find
from workflows.dashboard.run_page import EVENTS_SHOWN, run_timeline
from workflows.models import RunStatus

RUN_PARTS = ("summary", "steps", "links", "events")


def _run_visible(user, run_id):
    try:
        return selectors.run_get_visible(user=user, run_id=run_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc


@dashboard_login_required
def runs(request):
    filters = RunsFilter.from_query(request.GET)
    shown = {"status": filters.status, "workflow": filters.workflow, "before": filters.before}
    context = {
        "page": runs_page(user=request.user, filters=filters),
        "filters": filters,
        "query": urlencode({key: value for key, value in shown.items() if value}),
    }
    if request.GET.get("part") == "table":
        return render(request, "dashboard/parts/runs_table.html", context)
    context |= {"statuses": RunStatus.values, "workflows": workflow_choices(user=request.user)}
    return render(request, "dashboard/runs.html", context)


@dashboard_login_required
def run(request, run_id):
    run = _run_visible(request.user, run_id)
    part = request.GET.get("part")
    if part is not None and part not in RUN_PARTS:
        raise Http404(f"No part '{part}'.")
    context = {"run": run}
    if part in (None, "summary"):
        context["schedule"] = (run.ctx or {}).get("schedule")
    if part in (None, "steps", "links"):
        context["children"] = selectors.run_children(run=run, user=request.user)
    if part in (None, "steps"):
        rows, total = run_timeline(run=run, user=request.user, children=context["children"])
        context |= {"step_rows": rows, "step_runs_total": total}
    if part in (None, "links"):
        context["parent"] = selectors.run_parent_visible(run=run, user=request.user)
    if part in (None, "events"):
        context["events"] = selectors.run_events_latest(run=run, limit=EVENTS_SHOWN)
    template = "dashboard/run.html" if part is None else f"dashboard/parts/run_{part}.html"
    return render(request, template, context)


@dashboard_login_required
def run_panel(request, run_id, name):
    """One plug-in panel about a run, as its live element reloads it."""
    run = _run_visible(request.user, run_id)
    panel = panel_find(name)
    if panel is None:
        raise Http404(f"No panel '{name}'.")
    return HttpResponse(panel_body(panel, run=run, user=request.user, request=request))
