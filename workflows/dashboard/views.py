"""The dashboard's run pages: the list of runs, a run's page, and the plug-ins' panels about a
run. Views parse, check visibility (404 for what a user may not view) and render."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render

from config.errors import NotFound
from workflows import selectors
from workflows.dashboard.panels import panel_body, panel_find


def _run_visible(user, run_id):
    try:
        return selectors.run_get_visible(user=user, run_id=run_id)
    except NotFound as exc:
        raise Http404(exc.message) from exc


@login_required
def runs(request):
    return render(request, "dashboard/base.html")


@login_required
def run(request, run_id):
    return render(request, "dashboard/base.html")


@login_required
def run_panel(request, run_id, name):
    """One plug-in panel about a run, as its live element reloads it."""
    run = _run_visible(request.user, run_id)
    panel = panel_find(name)
    if panel is None:
        raise Http404(f"No panel '{name}'.")
    return HttpResponse(panel_body(panel, run=run, user=request.user, request=request))


@login_required
def overview(request):
    return render(request, "dashboard/base.html")
