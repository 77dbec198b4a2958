"""Reads that respect object permissions: what a user cannot view does not exist for them."""

from django.db.models import Count, Prefetch
from guardian.shortcuts import get_objects_for_user

from config.errors import NotFound
from workflows.models import Run, RunEvent, RunStep, StepRun, Workflow, WorkflowVersion


def workflows_visible_to(user):
    return get_objects_for_user(user, "workflows.view_workflow", klass=Workflow)


def workflows_all_visible_to(user) -> bool:
    """Whether `user` may view every workflow (a global permission, not per object)."""
    return user.is_superuser or user.has_perm("workflows.view_workflow")


def runs_visible_to(user):
    if workflows_all_visible_to(user):
        return Run.objects.all()
    return Run.objects.filter(workflow__in=workflows_visible_to(user).values("pk"))


def workflow_permits(user, workflow: Workflow, permission: str) -> bool:
    """Whether `user` holds `permission` (e.g. "run_workflow") globally or on this workflow."""
    perm = f"workflows.{permission}"
    return user.has_perm(perm) or user.has_perm(perm, workflow)


def workflow_runnable_by(user, slug: str) -> Workflow | None:
    """The published workflow `slug` if `user` may view and run it (None: the user is None)."""
    workflow = Workflow.objects.filter(slug=slug, current_version__isnull=False).first()
    if workflow is None or user is None:
        return workflow
    permitted = all(workflow_permits(user, workflow, p) for p in ("view_workflow", "run_workflow"))
    return workflow if permitted else None


def workflows_list(*, user):
    return workflows_visible_to(user).select_related("current_version", "owner")


def workflow_get_visible(*, user, slug: str) -> Workflow:
    """The workflow, or NotFound alike when it does not exist and when `user` may not view it."""
    workflow = (
        workflows_visible_to(user)
        .select_related("owner", "current_version__published_by")
        .filter(slug=slug)
        .first()
    )
    if workflow is None:
        raise NotFound(f"No workflow '{slug}'.")
    return workflow


def workflow_versions_list(*, workflow: Workflow):
    return WorkflowVersion.objects.filter(workflow=workflow).select_related("published_by")


# What a run list row shows: not the JSON documents (inputs, state, result) nor the version's spec,
# which can be large and would make a page of runs cost far more than it renders.
RUN_LIST_FIELDS = (
    "id", "workflow__slug", "version__number", "status", "progress_done", "progress_total",
    "cost_usd", "budget_usd", "degraded", "parent_run_id", "idempotency_key",
    "started_by__username", "created_at", "started_at", "finished_at",
)  # fmt: skip


def runs_list(*, user, workflow_slug: str | None = None, status: str | None = None):
    runs = (
        runs_visible_to(user)
        .select_related("workflow", "version", "started_by")
        .only(*RUN_LIST_FIELDS)
    )
    if workflow_slug:
        runs = runs.filter(workflow__slug=workflow_slug)
    if status:
        runs = runs.filter(status=status)
    return runs


STEPS_IN_DETAIL = 20  # a run's detail shows its first steps; /api/runs/{id}/steps/ pages all


def run_get_visible(*, user, run_id, with_steps: bool = False) -> Run:
    """The run, or NotFound if not visible. `with_steps`: with `step_counts` (by status) and
    `steps_first` (its first STEPS_IN_DETAIL steps, with their executions)."""
    runs = runs_visible_to(user).select_related("workflow", "version", "started_by")
    if with_steps:
        first = run_steps_with_executions()[:STEPS_IN_DETAIL]
        runs = runs.prefetch_related(Prefetch("run_steps", queryset=first, to_attr="steps_first"))
    run = runs.filter(pk=run_id).first()
    if run is None:
        raise NotFound(f"No run '{run_id}'.")
    if with_steps:
        counts = RunStep.objects.filter(run=run).values_list("status").annotate(n=Count("pk"))
        run.step_counts = dict(counts.order_by())
    return run


CHILDREN_SHOWN = 50  # a run page lists a run's first child runs


def run_parent_visible(*, run: Run, user) -> Run | None:
    """The run's parent, if it has one `user` may view."""
    if run.parent_run_id is None:
        return None
    parents = runs_visible_to(user).select_related("workflow")
    return parents.filter(pk=run.parent_run_id).first()


def run_children(*, run: Run, user=None) -> list[Run]:
    """The first CHILDREN_SHOWN child runs `run` started, oldest first: only those `user` may
    view when a user is given (a child may be of a workflow they may not view)."""
    runs = Run.objects.all() if user is None else runs_visible_to(user)
    children = runs.filter(parent_run=run).select_related("workflow").order_by("created_at", "id")
    return list(children[:CHILDREN_SHOWN])


def run_steps_with_executions():
    """Steps in the order they started, each with its executions (iteration, then attempt)."""
    executions = StepRun.objects.order_by("iteration", "attempt", "id")
    return RunStep.objects.order_by("started_at", "id").prefetch_related(
        Prefetch("step_runs", queryset=executions)
    )


def run_steps(*, run: Run):
    return run_steps_with_executions().filter(run=run)


def run_events_after(*, run: Run, after: int, limit: int) -> list[RunEvent]:
    """Up to `limit` events of the run with seq > `after`, in order."""
    return list(RunEvent.objects.filter(run=run, seq__gt=after).order_by("seq")[:limit])


def run_step_runs_first(*, run: Run, limit: int) -> tuple[list[StepRun], int]:
    """The run's first `limit` step runs in the order they were created (without their input,
    claim and bookkeeping), and how many it has in all."""
    step_runs = StepRun.objects.filter(run=run).order_by("created_at", "id")
    shown = list(step_runs.defer("input", "claim", "task_id", "worker", "reserved_usd")[:limit])
    return shown, len(shown) if len(shown) < limit else step_runs.count()


def run_events_latest(*, run: Run, limit: int) -> list[RunEvent]:
    """The run's latest `limit` events, oldest of them first."""
    latest = RunEvent.objects.filter(run=run).order_by("-seq")[:limit]
    return list(latest)[::-1]
