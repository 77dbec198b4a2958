import uuid

from django.conf import settings
from django.db import models
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase


class Workflow(models.Model):
    slug = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="owned_workflows"
    )
    paused = models.BooleanField(default=False)
    current_version = models.ForeignKey(
        "WorkflowVersion", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]
        permissions = [("run_workflow", "Can start and cancel runs of the workflow")]

    def __str__(self):
        return self.slug


class WorkflowUserObjectPermission(UserObjectPermissionBase):
    content_object = models.ForeignKey(Workflow, on_delete=models.CASCADE)


class WorkflowGroupObjectPermission(GroupObjectPermissionBase):
    content_object = models.ForeignKey(Workflow, on_delete=models.CASCADE)


class WorkflowVersion(models.Model):
    """An immutable, validated spec. Runs pin the version they started on."""

    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    spec = models.JSONField()
    source = models.TextField(help_text="The spec as submitted (YAML or JSON).")
    checksum = models.CharField(max_length=64)
    published_at = models.DateTimeField(auto_now_add=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )

    class Meta:
        ordering = ["workflow", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["workflow", "number"], name="unique_version_number")
        ]

    def __str__(self):
        return f"{self.workflow_id}:v{self.number}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Workflow versions are immutable; publish a new version instead.")
        super().save(*args, **kwargs)


class RunStatus(models.TextChoices):
    PENDING = "PENDING"
    PLANNING = "PLANNING"
    RUNNING = "RUNNING"
    WAITING = "WAITING"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


RUN_TRANSITIONS: dict[str, frozenset[str]] = {
    RunStatus.PENDING: frozenset({RunStatus.PLANNING, RunStatus.CANCELLED, RunStatus.FAILED}),
    RunStatus.PLANNING: frozenset({RunStatus.RUNNING, RunStatus.CANCELLED, RunStatus.FAILED}),
    RunStatus.RUNNING: frozenset(
        {RunStatus.WAITING, RunStatus.COMPLETED, RunStatus.CANCELLED, RunStatus.FAILED}
    ),
    RunStatus.WAITING: frozenset({RunStatus.RUNNING, RunStatus.CANCELLED, RunStatus.FAILED}),
    RunStatus.COMPLETED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
    RunStatus.FAILED: frozenset(),
}
RUN_TERMINAL = frozenset({RunStatus.COMPLETED, RunStatus.CANCELLED, RunStatus.FAILED})


class Run(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="runs")
    version = models.ForeignKey(WorkflowVersion, on_delete=models.PROTECT, related_name="runs")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.PENDING)
    inputs = models.JSONField(default=dict)
    state = models.JSONField(default=dict, help_text="Run-scoped values steps set with `set:`.")
    ctx = models.JSONField(default=dict)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    parent_run = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="child_runs"
    )
    parent_step_run = models.OneToOneField(
        "StepRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="child_run"
    )
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    steps_busy = models.PositiveIntegerField(
        default=0, help_text="Step runs PENDING or RUNNING (kept by the engine under the run lock)."
    )
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    budget_usd = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True, help_text="None: no budget."
    )
    reserved_usd = models.DecimalField(
        max_digits=12, decimal_places=6, default=0,
        help_text="Held by calls in flight against the budget (engine.budget).",
    )  # fmt: skip
    degraded = models.BooleanField(default=False)
    # NULL, not "", for "no key": the unique constraint below only covers runs that have one.
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    event_seq = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        permissions = [("cancel_run", "Can cancel any run")]
        constraints = [
            models.UniqueConstraint(
                fields=["workflow", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="unique_run_idempotency_key",
            )
        ]
        indexes = [
            models.Index(fields=["workflow", "-created_at"], name="run_workflow_created"),
            models.Index(fields=["status", "-created_at"], name="run_status_created"),
        ]

    def __str__(self):
        return f"{self.workflow_id}/{self.id}"

    @property
    def is_terminal(self) -> bool:
        return self.status in RUN_TERMINAL


class StepStatus(models.TextChoices):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    WAITING = "WAITING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    CANCELLED = "CANCELLED"


STEP_ACTIVE = frozenset({StepStatus.PENDING, StepStatus.RUNNING, StepStatus.WAITING})
STEP_BUSY = frozenset({StepStatus.PENDING, StepStatus.RUNNING})  # counted in Run.steps_busy
# A step run's status machine (engine.transitions.step_run_transition). RUNNING -> RUNNING is a
# takeover: a delivery found the lease of the one running it expired (its worker died).
# PENDING -> WAITING: a step a gate escalated is held before it runs.
STEP_RUN_TRANSITIONS: dict[str, frozenset[str]] = {
    StepStatus.PENDING: frozenset(
        {
            StepStatus.RUNNING,
            StepStatus.WAITING,
            StepStatus.SKIPPED,
            StepStatus.FAILED,
            StepStatus.CANCELLED,
        }
    ),
    StepStatus.RUNNING: frozenset(
        {
            StepStatus.RUNNING,
            StepStatus.SUCCEEDED,
            StepStatus.FAILED,
            StepStatus.WAITING,
            StepStatus.SKIPPED,
            StepStatus.CANCELLED,
        }
    ),
    StepStatus.WAITING: frozenset(
        {StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELLED}
    ),
    StepStatus.SUCCEEDED: frozenset(),
    StepStatus.FAILED: frozenset(),
    StepStatus.SKIPPED: frozenset(),
    StepStatus.CANCELLED: frozenset(),
}


class RunStep(models.Model):
    """The state of one step of the spec within a run: the node the planner reasons about.

    Its executions (one per foreach item or repeat iteration, and per retry attempt) are StepRuns.
    The unique (run, step_id) pair is what makes starting a step, e.g. a join, happen once.
    """

    # Indexed as the first column of unique_run_step (every index costs each write of the row).
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="run_steps", db_index=False)
    step_id = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=StepStatus.choices)
    output = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    items = models.JSONField(null=True, blank=True, help_text="foreach: the evaluated list.")
    routes = models.JSONField(
        null=True, blank=True, help_text="The dependents a gate routed to (null: all of them)."
    )
    iterations_started = models.PositiveIntegerField(default=0)
    iterations_done = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "started_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["run", "step_id"], name="unique_run_step"),
        ]

    def __str__(self):
        return f"{self.run_id}:{self.step_id}"


class StepRun(models.Model):
    """One execution attempt of one iteration of a step; what a Celery task executes by id."""

    # Indexed as the first column of unique_step_execution: a step run is written two or three
    # times and each write adds an entry to every index, so it has no index it can do without.
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="step_runs", db_index=False)
    run_step = models.ForeignKey(RunStep, on_delete=models.CASCADE, related_name="step_runs")
    step_id = models.CharField(max_length=100)
    kind = models.CharField(max_length=32)
    iteration = models.PositiveIntegerField(default=0)
    attempt = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=16, choices=StepStatus.choices, default=StepStatus.PENDING)
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    degraded = models.BooleanField(default=False)
    cost_usd = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    reserved_usd = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    wait_reason = models.CharField(max_length=64, blank=True, help_text="WAITING: on what.")
    wait_ref = models.CharField(
        max_length=200, blank=True, help_text="WAITING: the reference a resumer must quote."
    )
    due_at = models.DateTimeField(help_text="Not to be executed before this time.")
    dispatched_at = models.DateTimeField(null=True, blank=True)
    wake_at = models.DateTimeField(null=True, blank=True, help_text="WAITING on a timer until.")
    claim = models.UUIDField(null=True, blank=True, help_text="Token of the current execution.")
    worker = models.CharField(max_length=200, blank=True)
    task_id = models.CharField(max_length=255, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["run", "step_id", "iteration", "attempt"], name="unique_step_execution"
            )
        ]
        indexes = [
            models.Index(
                fields=["due_at"],
                name="steprun_pending_due",
                condition=models.Q(status="PENDING"),
            ),
            models.Index(
                fields=["lease_until"],
                name="steprun_running_lease",
                condition=models.Q(status="RUNNING"),
            ),
            models.Index(
                fields=["wake_at"],
                name="steprun_waiting_wake",
                condition=models.Q(status="WAITING"),
            ),
        ]

    def __str__(self):
        return f"{self.step_id}[{self.iteration}]#{self.attempt}"

    @property
    def idempotency_key(self) -> str:
        """Stable across retries and redeliveries of this step iteration, for outside effects."""
        return f"{self.run_id}:{self.step_id}:{self.iteration}"


class RunEvent(models.Model):
    """Append-only history of a run; `seq` is dense and ordered per run."""

    # Indexed as the first column of unique_run_event_seq.
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="events", db_index=False)
    seq = models.PositiveBigIntegerField()
    type = models.CharField(max_length=64)
    payload = models.JSONField(default=dict)
    at = models.DateTimeField()

    class Meta:
        ordering = ["run", "seq"]
        constraints = [models.UniqueConstraint(fields=["run", "seq"], name="unique_run_event_seq")]

    def __str__(self):
        return f"{self.run_id}#{self.seq} {self.type}"


class Schedule(models.Model):
    """A workflow started on a cron expression or every N seconds, with fixed inputs.

    Beat fires it through its django-celery-beat PeriodicTask (written by
    workflows.schedules.schedule_save, never by hand); its runs start as `owner`.
    """

    name = models.CharField(max_length=100, unique=True)
    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT, related_name="schedules")
    cron = models.CharField(
        max_length=100, blank=True, help_text="Five fields, UTC: minute hour day month weekday."
    )
    interval_seconds = models.PositiveIntegerField(
        null=True, blank=True, help_text="Or: every this many seconds."
    )
    inputs = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="schedules",
        help_text="Who scheduled it (last saved it): its runs start as them.",
    )  # fmt: skip
    periodic_task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", on_delete=models.SET_NULL, null=True, blank=True,
        related_name="+",
    )  # fmt: skip
    last_run = models.ForeignKey(
        Run, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name
