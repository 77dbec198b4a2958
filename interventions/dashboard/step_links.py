"""On a run's dashboard page, the row of a step run waiting on a person links to the page of
the intervention it waits on (registered with api.step_links_register)."""

from django.urls import reverse

from interventions.models import InterventionType
from interventions.selectors import interventions_active_of_run


def step_runs_waiting_links(run, user) -> dict[int, tuple[str, str]]:
    """{step_run_id: (label, url)} of the run's open and claimed interventions; the run is one
    `user` may view, so its interventions are too."""
    return {
        step_run_id: (
            f"Open {InterventionType(kind).label.lower()}",
            reverse("dashboard:intervention", args=[pk]),
        )
        for step_run_id, pk, kind in interventions_active_of_run(run_id=run.pk)
    }
