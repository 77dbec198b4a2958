"""What a run's dashboard page shows beyond the run itself: its step runs as a timeline (each
with the child run it started and the links plug-ins add), its parent and child runs, and its
latest events. Everything is read afresh from the database on each (re)load."""

from dataclasses import dataclass

from workflows import selectors
from workflows.engine.registry import step_links
from workflows.models import Run, RunEvent, StepRun

STEP_RUNS_SHOWN = 200
EVENTS_SHOWN = 100


@dataclass(frozen=True)
class StepRow:
    step_run: StepRun
    child: Run | None
    links: list[tuple[str, str]]  # (label, url) from plug-ins


def run_parent(*, run: Run, user) -> Run | None:
    """The run's parent, if it has one the user may view."""
    if run.parent_run_id is None:
        return None
    parents = selectors.runs_visible_to(user).select_related("workflow")
    return parents.filter(pk=run.parent_run_id).first()


def run_timeline(*, run: Run, user, children: list[Run]) -> tuple[list[StepRow], int]:
    """The run's first STEP_RUNS_SHOWN step runs in the order they were created, and how many
    it has in all; `children` are its child runs the user may view (selectors.run_children)."""
    step_runs = StepRun.objects.filter(run=run).order_by("created_at", "id")
    shown = list(
        step_runs.defer("input", "claim", "task_id", "worker", "reserved_usd")[:STEP_RUNS_SHOWN]
    )
    total = len(shown) if len(shown) < STEP_RUNS_SHOWN else step_runs.count()
    child_of = {child.parent_step_run_id: child for child in children}
    links: dict[int, list[tuple[str, str]]] = {}
    for plugin_links in step_links():
        for step_run_id, link in plugin_links(run, user).items():
            links.setdefault(step_run_id, []).append(link)
    rows = [StepRow(sr, child_of.get(sr.pk), links.get(sr.pk, [])) for sr in shown]
    return rows, total


def run_events_latest(*, run: Run) -> list[RunEvent]:
    """The run's latest EVENTS_SHOWN events, oldest of them first."""
    latest = RunEvent.objects.filter(run=run).order_by("-seq")[:EVENTS_SHOWN]
    return list(latest)[::-1]
