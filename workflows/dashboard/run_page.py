"""What a run's dashboard page makes of its step runs: a timeline, each with the child run it
started and the links plug-ins add. Everything is read afresh, through the selectors, on each
(re)load."""

from dataclasses import dataclass

from workflows import selectors
from workflows.engine.holds import ESCALATED
from workflows.engine.registry import step_links
from workflows.models import Run, StepRun, StepStatus

STEP_RUNS_SHOWN = 200
EVENTS_SHOWN = 100


# What a waiting step run waits for, as its row says it: "Waiting · escalated to a person".
WAITING_ON = {ESCALATED: "escalated to a person", "person": "for a person's answer",
              "correction": "for a person's correction", "timer": "on a timer",
              "child_run": "for its child run"}  # fmt: skip


@dataclass(frozen=True)
class StepRow:
    step_run: StepRun
    child: Run | None
    links: list[tuple[str, str]]  # (label, url) from plug-ins
    # A gate's hold: the step run that waited for a person before any attempt ran.
    held: bool = False
    superseded_by: int | None = None  # the attempt that replaced this cancelled one

    @property
    def waiting_on(self) -> str:
        reason = self.step_run.wait_reason
        return WAITING_ON.get(reason, f"on {reason}") if reason else ""


def _superseding(step_runs: list[StepRun]) -> dict[int, int]:
    """step run id -> the attempt that replaced it: a cancelled step run followed by another of
    the same step and iteration (a person's "retry" cancels the waiting one and starts the
    next, engine.steps.step_retry)."""
    later: dict[tuple[int, int], int] = {}
    replaced: dict[int, int] = {}
    for step_run in reversed(step_runs):
        key = (step_run.run_step_id, step_run.iteration)
        if step_run.status == StepStatus.CANCELLED and key in later:
            replaced[step_run.pk] = later[key]
        later[key] = step_run.attempt
    return replaced


def run_timeline(*, run: Run, user, children: list[Run]) -> tuple[list[StepRow], int]:
    """The run's first STEP_RUNS_SHOWN step runs in the order they were created, and how many
    it has in all; `children` are its child runs the user may view (selectors.run_children)."""
    shown, total = selectors.run_step_runs_first(run=run, limit=STEP_RUNS_SHOWN)
    child_of = {child.parent_step_run_id: child for child in children}
    links: dict[int, list[tuple[str, str]]] = {}
    for plugin_links in step_links():
        for step_run_id, link in plugin_links(run, user).items():
            links.setdefault(step_run_id, []).append(link)
    replaced = _superseding(shown)
    rows = [
        StepRow(sr, child_of.get(sr.pk), links.get(sr.pk, []),
                held=sr.wait_reason == ESCALATED and sr.started_at is None,
                superseded_by=replaced.get(sr.pk))
        for sr in shown
    ]  # fmt: skip
    return rows, total
