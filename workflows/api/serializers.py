"""Input parsing and output rendering for the workflows API. Nothing here writes."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from workflows.models import Run, RunEvent, RunStatus, RunStep, StepRun, Workflow, WorkflowVersion

# Inputs


class WorkflowUpdateInput(serializers.Serializer):
    paused = serializers.BooleanField()


class RunStartInput(serializers.Serializer):
    inputs = serializers.DictField(required=False, default=dict)
    idempotency_key = serializers.CharField(
        required=False, allow_null=True, allow_blank=True, max_length=200
    )
    ctx = serializers.DictField(required=False, allow_null=True)
    budget_usd = serializers.DecimalField(
        max_digits=12, decimal_places=6, min_value=0, max_value=10**6, required=False,
        allow_null=True, help_text="What the run may spend, in USD (default: the spec's).",
    )  # fmt: skip


class RunCancelInput(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500)


class RunRetryInput(serializers.Serializer):
    step = serializers.CharField(
        required=False,
        max_length=100,
        help_text="Retry from this failed step (the rest of the run resumes with it); "
        "left out: the run's failed steps.",
    )


class RunFilterInput(serializers.Serializer):
    workflow = serializers.SlugField(required=False, help_text="Only runs of this workflow.")
    status = serializers.ChoiceField(
        choices=RunStatus.choices, required=False, help_text="Only runs in this status."
    )


class EventsQueryInput(serializers.Serializer):
    after = serializers.IntegerField(
        required=False, default=0, min_value=0, help_text="Only events with a greater seq."
    )
    limit = serializers.IntegerField(required=False, default=500, min_value=1, max_value=1000)


# Outputs


class VersionSerializer(serializers.ModelSerializer):
    published_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = WorkflowVersion
        fields = ["number", "checksum", "published_at", "published_by", "spec"]
        read_only_fields = fields


class WorkflowSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    current_version = serializers.IntegerField(
        source="current_version.number", read_only=True, allow_null=True
    )

    class Meta:
        model = Workflow
        fields = [
            "slug",
            "name",
            "description",
            "owner",
            "paused",
            "current_version",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class WorkflowDetailSerializer(WorkflowSerializer):
    current_version = VersionSerializer(read_only=True, allow_null=True)


class RunSerializer(serializers.ModelSerializer):
    workflow = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    version = serializers.IntegerField(source="version.number", read_only=True)
    started_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    progress = serializers.SerializerMethodField()
    cost_usd = serializers.DecimalField(max_digits=12, decimal_places=6, coerce_to_string=False)
    budget_usd = serializers.DecimalField(
        max_digits=12, decimal_places=6, coerce_to_string=False, allow_null=True
    )

    class Meta:
        model = Run
        fields = [
            "id",
            "workflow",
            "version",
            "status",
            "progress",
            "cost_usd",
            "budget_usd",
            "degraded",
            "parent_run",
            "idempotency_key",
            "started_by",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    @extend_schema_field(
        {
            "type": "object",
            "properties": {
                "done": {"type": "integer"},
                "total": {"type": "integer"},
                "percent": {"type": "number"},
            },
        }
    )
    def get_progress(self, run: Run) -> dict:
        total = run.progress_total
        done = min(run.progress_done, total)
        return {
            "done": done,
            "total": total,
            "percent": round(100 * done / total, 1) if total else 0,
        }


class StepRunSerializer(serializers.ModelSerializer):
    class Meta:
        model = StepRun
        fields = [
            "id",
            "iteration",
            "attempt",
            "kind",
            "status",
            "input",
            "output",
            "error",
            "degraded",
            "worker",
            "due_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class RunStepSerializer(serializers.ModelSerializer):
    executions = StepRunSerializer(source="step_runs", many=True, read_only=True)

    class Meta:
        model = RunStep
        fields = [
            "step_id",
            "status",
            "output",
            "error",
            "iterations_started",
            "iterations_done",
            "started_at",
            "finished_at",
            "executions",
        ]
        read_only_fields = fields


class RunDetailSerializer(RunSerializer):
    step_counts = serializers.DictField(
        child=serializers.IntegerField(), read_only=True, help_text="The run's steps by status."
    )
    steps = RunStepSerializer(
        source="steps_first",
        many=True,
        read_only=True,
        help_text="Its first steps, in the order they started; all of them: /steps/.",
    )

    class Meta(RunSerializer.Meta):
        fields = [
            *RunSerializer.Meta.fields,
            *("inputs", "state", "ctx", "result", "error", "step_counts", "steps"),
        ]
        read_only_fields = fields


class RunEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = RunEvent
        fields = ["seq", "type", "payload", "at"]
        read_only_fields = fields


class RunEventsSerializer(serializers.Serializer):
    """A page of a run's events; poll again with `after=last_seq` while `has_more` or running."""

    run_status = serializers.ChoiceField(choices=RunStatus.choices)
    results = RunEventSerializer(many=True)
    last_seq = serializers.IntegerField(help_text="Pass as `after` to get the next events.")
    has_more = serializers.BooleanField()
