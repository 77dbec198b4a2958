"""The operator's console: publish, pause, grant, start and cancel, without the API.

Everything here parses, checks a permission and calls a service or the engine; nothing saves a
model instance itself. Versions and runs are history, so their admins are read-only. Actions are
gated by model-wide permissions (operators hold them); querysets hide what a user may not view.
"""

import json

from django import forms
from django.contrib import admin, messages
from django.forms.models import BaseInlineFormSet
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from guardian.admin import GuardedModelAdmin

from config.admin import ReadOnlyAdmin
from config.errors import ChameleonError, error_lines
from config.forms import spec_field
from workflows import services
from workflows.admin_runs import ExecutionTableMixin, RunPageMixin, StepTableMixin, when
from workflows.admin_workflow_pages import WorkflowPagesMixin
from workflows.engine.api import run_cancel, run_start
from workflows.engine.registry import run_pages
from workflows.models import Run, RunEvent, RunStep, StepRun, Workflow, WorkflowVersion
from workflows.selectors import runs_visible_to, workflows_visible_to

SPEC_PLACEHOLDER = """slug: my-workflow
name: My workflow
inputs:
  name: {type: string, default: world}
steps:
  - id: greet
    tool: template.render
    with: {template: "Hello, {{ inputs.name }}!"}
"""


def _pretty_json(value) -> str:
    if value in (None, "", {}, []):
        return "-"
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, default=str))


def _admin_link(obj, text=None) -> str:
    url = reverse(f"admin:workflows_{obj._meta.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text if text is not None else obj)


class WorkflowSpecForm(forms.ModelForm):
    """Create a workflow (add page) or publish its next version (change page) from a spec.

    Validation and publishing are one service call, made from `clean()` so that every spec
    error lands on the form with its path and nothing is saved. The admin's change view runs
    inside one transaction and, with no inlines on this admin, nothing can fail after `clean()`;
    keep it that way (an invalid inline formset would leave the published version in place).
    """

    spec = spec_field(rows=28, placeholder=SPEC_PLACEHOLDER)

    class Meta:
        model = Workflow
        fields = ()

    publisher = None  # set per request by WorkflowAdmin.get_form

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.published_version: WorkflowVersion | None = None
        self.version_is_new = False
        current = self.instance.current_version if self.instance.pk else None
        if current is not None:
            self.fields["spec"].initial = current.source

    def clean(self):
        cleaned = super().clean()
        source = cleaned.get("spec")
        if not source:
            return cleaned
        source = source.replace("\r\n", "\n")  # browsers send textareas with CRLF line ends
        try:
            if self.instance.pk is None:
                self.instance = services.workflow_create(source=source, created_by=self.publisher)
                self.published_version = self.instance.current_version
                self.version_is_new = True
            else:
                previous = self.instance.current_version_id
                self.published_version = services.workflow_version_publish(
                    workflow=self.instance, source=source, published_by=self.publisher
                )
                self.version_is_new = self.published_version.pk != previous
                self.instance.refresh_from_db()
        except ChameleonError as exc:
            for line in error_lines(exc):
                self.add_error("spec", line)
        return cleaned


@admin.register(Workflow)
class WorkflowAdmin(WorkflowPagesMixin, GuardedModelAdmin):
    form = WorkflowSpecForm
    list_display = ("slug", "name", "paused", "current_version_number", "owner", "updated_at")
    list_filter = ("paused",)
    list_select_related = ("current_version", "owner")
    search_fields = ("slug", "name")
    actions = ("pause", "unpause", "start_run")
    details = (
        "slug",
        "name",
        "description",
        "owner",
        "paused",
        "current_version_link",
        "runs_link",
        "created_at",
        "updated_at",
    )

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(pk__in=workflows_visible_to(request.user).values("pk"))

    def get_fieldsets(self, request, obj=None):
        if obj is None:
            return [(None, {"fields": ["spec"]})]
        history = ("Versions", {"fields": ["versions_list"]})
        if not self.has_change_permission(request, obj):
            current = ("Current spec", {"fields": ["current_source"]})
            return [(None, {"fields": self.details}), current, history]
        publish = (
            "Publish a new version",
            {
                "fields": ["spec"],
                "description": "Saving validates the spec and publishes it as the next version; "
                "runs already started keep their version. An unchanged spec publishes nothing.",
            },
        )
        return [(None, {"fields": self.details}), publish, history]

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else (*self.details, "current_source", "versions_list")

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.publisher = request.user  # modelform_factory made this class for this request
        return form

    def save_model(self, request, obj, form, change):
        """The form's service call already saved; say what it did."""
        version = form.published_version
        if form.version_is_new:
            self.message_user(request, f"Published {obj.slug} version {version.number}.")
        else:
            self.message_user(
                request,
                f"The spec is unchanged; version {version.number} stays current.",
                messages.WARNING,
            )

    def construct_change_message(self, request, form, formsets, add=False):
        if not form.version_is_new:
            return []
        version = form.published_version
        return [{"added": {"name": "workflow version", "object": f"v{version.number}"}}]

    def has_delete_permission(self, request, obj=None):
        return False  # runs and versions are history; pause a workflow instead

    def has_run_permission(self, request, obj=None):
        return request.user.has_perm("workflows.run_workflow")

    @admin.display(description="Current version", ordering="current_version__number")
    def current_version_number(self, obj):
        return obj.current_version.number if obj.current_version else None

    @admin.display(description="Current version")
    def current_version_link(self, obj):
        version = obj.current_version
        return _admin_link(version, f"v{version.number}") if version else "-"

    @admin.display(description="Runs")
    def runs_link(self, obj):
        url = reverse("admin:workflows_run_changelist") + f"?workflow__id__exact={obj.pk}"
        return format_html('<a href="{}">Runs of {}</a>', url, obj.slug)

    @admin.display(description="Spec")
    def current_source(self, obj):
        version = obj.current_version
        return format_html("<pre>{}</pre>", version.source) if version else "-"

    @admin.display(description="Versions")
    def versions_list(self, obj):
        versions = obj.versions.select_related("published_by").order_by("-number")[:20]
        return format_html_join(
            "",
            "<div>{} published {} by {}</div>",
            (
                (_admin_link(v, f"v{v.number}"), f"{v.published_at:%Y-%m-%d %H:%M}", v.published_by)
                for v in versions
            ),
        )

    @admin.action(description="Pause selected workflows (no new runs)", permissions=["change"])
    def pause(self, request, queryset):
        self._set_paused(request, queryset, paused=True)

    @admin.action(description="Unpause selected workflows", permissions=["change"])
    def unpause(self, request, queryset):
        self._set_paused(request, queryset, paused=False)

    def _set_paused(self, request, queryset, *, paused: bool) -> None:
        state = "Paused" if paused else "Unpaused"
        changed = []
        for workflow in queryset:
            services.workflow_set_paused(workflow=workflow, paused=paused, by=request.user)
            self.log_change(request, workflow, state)
            changed.append(workflow.slug)
        self.message_user(request, f"{state} {len(changed)}: {', '.join(changed) or 'none'}.")

    @admin.action(description="Start a run with default inputs", permissions=["run"])
    def start_run(self, request, queryset):
        for workflow in queryset:
            try:
                run, _ = run_start(workflow=workflow, inputs={}, started_by=request.user)
            except ChameleonError as exc:
                problems = "; ".join(error_lines(exc))
                self.message_user(request, f"{workflow.slug}: {problems}", messages.ERROR)
                continue
            link = _admin_link(run, run.pk)
            self.message_user(request, format_html("{}: started run {}", workflow.slug, link))


@admin.register(WorkflowVersion)
class WorkflowVersionAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    """Published versions are immutable: view only, for everyone."""

    list_display = ("workflow", "number", "published_at", "published_by", "short_checksum")
    list_filter = ("workflow",)
    list_select_related = ("workflow", "published_by")
    fields = (
        "workflow", "number", "published_at", "published_by", "checksum", "source_text",
        "spec_json",
    )  # fmt: skip
    readonly_fields = fields

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(workflow__in=workflows_visible_to(request.user).values("pk"))

    @admin.display(description="Checksum")
    def short_checksum(self, obj):
        return obj.checksum[:12]

    @admin.display(description="Source")
    def source_text(self, obj):
        return format_html("<pre>{}</pre>", obj.source)

    @admin.display(description="Spec (canonical)")
    def spec_json(self, obj):
        return _pretty_json(obj.spec)


class _LatestRowsFormSet(BaseInlineFormSet):
    """Show at most `limit` rows: a long run has thousands of steps and events."""

    limit = 200

    def get_queryset(self):
        if not hasattr(self, "_queryset"):
            queryset = super().get_queryset()
            self._queryset = queryset[: self.limit]
        return self._queryset


class _ReadOnlyInline(ReadOnlyAdmin, admin.TabularInline):
    formset = _LatestRowsFormSet
    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields

    def has_view_permission(self, request, obj=None):
        # Steps and events follow their run (and so their workflow); RunAdmin's queryset has
        # already decided whether the run is visible.
        return request.user.has_perm("workflows.view_run") or request.user.is_superuser


class RunStepInline(StepTableMixin, _ReadOnlyInline):
    model = RunStep
    verbose_name_plural = "Steps (first 200)"
    fields = (
        "step_id", "status_shown", "took", "iterations_done", "child_runs", "output_shown",
        "error", "started_shown", "finished_shown",
    )  # fmt: skip


class StepRunInline(ExecutionTableMixin, _ReadOnlyInline):
    model = StepRun
    verbose_name_plural = "Step executions (first 200)"
    fields = (
        "step_id", "iteration", "attempt", "status_shown", "took", "kind", "worker",
        "child_run_shown", "error", "due_shown",
    )  # fmt: skip


class RunEventInline(_ReadOnlyInline):
    model = RunEvent
    verbose_name_plural = "Events (first 200)"
    fields = ("seq", "type", "payload", "at_shown")

    @admin.display(description="At")
    def at_shown(self, obj):
        return when(obj.at)


@admin.register(Run)
class RunAdmin(RunPageMixin, ReadOnlyAdmin, admin.ModelAdmin):
    """Runs are driven by the engine: the admin watches them and can cancel them, nothing else."""

    list_display = (
        "id", "workflow", "version_number", "status_shown", "progress", "took",
        "started_by", "created_at",
    )  # fmt: skip
    list_filter = ("status", ("workflow", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("workflow", "version", "started_by")
    search_fields = ("^id",)
    show_full_result_count = False
    actions = ("cancel",)
    inlines = (RunStepInline, StepRunInline, RunEventInline)
    fields = (
        "id", "workflow", "version_shown", "status_shown", "progress", "took", "error",
        "degraded_shown", "cost_shown", "budget_shown", "parent_shown", "children_shown",
        "started_by", "idempotency_key", "created_shown", "started_shown", "finished_shown",
        "inputs_json", "state_json", "ctx_json", "result_json", "more",
    )  # fmt: skip
    readonly_fields = fields

    def get_queryset(self, request):
        return runs_visible_to(request.user).select_related("workflow", "version", "started_by")

    def has_cancel_permission(self, request, obj=None):
        # Cancelling is part of running a workflow (run_workflow), or an operator's override.
        user = request.user
        return user.has_perm("workflows.cancel_run") or user.has_perm("workflows.run_workflow")

    @admin.action(description="Cancel selected runs", permissions=["cancel"])
    def cancel(self, request, queryset):
        cancelled = 0
        for run in queryset:
            try:
                run_cancel(
                    run_id=run.pk,
                    reason=f"cancelled by {request.user.get_username()}",
                    by=request.user,
                )
            except ChameleonError as exc:
                self.message_user(request, exc.message, messages.ERROR)
                continue
            self.log_change(request, run, "Cancelled")
            cancelled += 1
        if cancelled:
            self.message_user(request, f"Cancelled {cancelled} run(s).")

    @admin.display(description="Version")
    def version_number(self, obj):
        return obj.version.number

    @admin.display(description="Progress")
    def progress(self, obj):
        return f"{obj.progress_done}/{obj.progress_total}"

    @admin.display(description="See also")
    def more(self, obj):
        links = [(url_of(str(obj.pk)), label) for label, url_of in run_pages().items()]
        return format_html_join(" · ", '<a href="{}">{}</a>', links) or "-"

    @admin.display(description="Inputs")
    def inputs_json(self, obj):
        return _pretty_json(obj.inputs)

    @admin.display(description="State")
    def state_json(self, obj):
        return _pretty_json(obj.state)

    @admin.display(description="Context")
    def ctx_json(self, obj):
        return _pretty_json(obj.ctx)

    @admin.display(description="Result")
    def result_json(self, obj):
        return _pretty_json(obj.result)


from workflows import schedule_admin  # noqa: E402, F401 (registers the schedules admin)
