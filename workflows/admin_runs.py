"""A run's admin page read as a product page: coloured statuses with their text, durations,
readable timestamps, the steps as a table linking the child runs they started, and the Retry
buttons of a failed run (the run's, and each failed step's in its row)."""

from datetime import datetime

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from config.errors import ChameleonError
from workflows import formats
from workflows.engine.api import run_retry
from workflows.formats import STATUS_TONES, age_words, brief_json, took_words, usd
from workflows.models import Run, RunStatus, StepStatus
from workflows.selectors import run_children, workflow_permits

RETRY_FORM_ID = "chameleon-retry"  # the Retry form (templates/admin/workflows/run/change_form.html)

# The admin has no dashboard stylesheet: each tone's colour, behind white text (4.5:1 or more).
TONE_COLOURS = {"": "#6b7280", "info": "#1d4ed8", "warn": "#b45309", "ok": "#15803d",
                "bad": "#b91c1c"}  # fmt: skip
BADGE_STYLE = (
    "background:{};color:#fff;padding:1px 8px;border-radius:9px;font-weight:600;white-space:nowrap"
)


def status_badge(status: str) -> str:
    colour = TONE_COLOURS[STATUS_TONES.get(status, "")]
    return formats.status_badge(
        status, classes="chameleon-status", style=BADGE_STYLE.format(colour)
    )


def when(moment: datetime | None) -> str:
    """A moment as the dashboard writes it, and how long ago it was."""
    if moment is None:
        return "-"
    return format_html(
        '{} <span class="quiet">({})</span>',
        formats.when(moment),
        age_words(moment, timezone.now()),
    )


def run_link(run: Run) -> str:
    url = reverse("admin:workflows_run_change", args=[run.pk])
    return format_html(
        '<a href="{}">{}</a> {}',
        url,
        f"{run.workflow.slug} · {str(run.pk)[:8]}",
        status_badge(run.status),
    )


def run_title(run: Run) -> str:
    """What the run's page is called: Run 8a82b6de… of contract-review v1."""
    return f"Run {str(run.pk)[:8]}… of {run.workflow.slug} v{run.version.number}"


def run_links(runs) -> str:
    return format_html_join(mark_safe("<br>"), "{}", ((run_link(run),) for run in runs)) or "-"


class _Timing:
    """A status badge, and when it started, finished and how long it took (runs and steps)."""

    @admin.display(description="Status", ordering="status")
    def status_shown(self, obj):
        return status_badge(obj.status)

    @admin.display(description="Duration")
    def took(self, obj):
        return took_words(obj.started_at, obj.finished_at)

    @admin.display(description="Started")
    def started_shown(self, obj):
        return when(obj.started_at)

    @admin.display(description="Finished")
    def finished_shown(self, obj):
        return when(obj.finished_at)


def may_retry(request, run: Run) -> bool:
    """Whether the page offers Retry: a failed run, to whoever may run its workflow."""
    return run.status == RunStatus.FAILED and workflow_permits(
        request.user, run.workflow, "run_workflow"
    )


class RunPageMixin(_Timing):
    """Mix into RunAdmin before the ModelAdmin class: the display fields of the run page and
    its Retry view (POST: the run's Retry button, or a failed step's with `step`)."""

    def get_urls(self):
        name = f"{self.opts.app_label}_{self.opts.model_name}_retry"
        view = self.admin_site.admin_view(self.retry_view)
        return [path("<path:object_id>/retry/", view, name=name), *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = self.get_object(request, object_id)
        if run is not None:
            # The page's title, heading and breadcrumb name the run, not its row (str(run))
            extra_context = {**(extra_context or {}), "may_retry": may_retry(request, run),
                             "retry_form_id": RETRY_FORM_ID, "title": run_title(run),
                             "subtitle": None, "run_title": run_title(run),
                             "failure": run.error.rstrip(". ")}  # fmt: skip
        return super().change_view(request, object_id, form_url, extra_context)

    def retry_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        run = self.get_object(request, object_id)  # through get_queryset: hides the unseen
        if run is None:
            raise Http404("No such run.")
        if not workflow_permits(request.user, run.workflow, "run_workflow"):
            raise PermissionDenied
        step = request.POST.get("step") or None
        try:
            run = run_retry(run_id=run.pk, by=request.user, step_id=step)
        except ChameleonError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        else:
            self.log_change(request, run, f"Retried from step {step}" if step else "Retried")
            if run.status == RunStatus.FAILED:  # a gate blocked a step again
                self.message_user(request, f"Retried, and it failed again: {run.error}",
                                  messages.WARNING)  # fmt: skip
            else:
                self.message_user(request, f"Retried: the run is {run.status.lower()} again, "
                                           "its failed steps on a fresh attempt.")  # fmt: skip
        return HttpResponseRedirect(reverse("admin:workflows_run_change", args=[run.pk]))

    @admin.display(description="Created")
    def created_shown(self, obj):
        return when(obj.created_at)

    @admin.display(description="Version")
    def version_shown(self, obj):
        return f"{obj.workflow.slug} v{obj.version.number}"

    @admin.display(description="Cost")
    def cost_shown(self, obj):
        return usd(obj.cost_usd)

    @admin.display(description="Budget")
    def budget_shown(self, obj):
        return "No budget" if obj.budget_usd is None else usd(obj.budget_usd)

    @admin.display(description="Degraded")
    def degraded_shown(self, obj):
        if not obj.degraded:
            return "No"
        return format_html(
            '<span style="color:#b91c1c;font-weight:600">{}</span> {}',
            "Yes",
            "(a step ran without what it needed: see the steps marked degraded)",
        )

    @admin.display(description="Parent run")
    def parent_shown(self, obj):
        return run_link(obj.parent_run) if obj.parent_run_id else "-"

    @admin.display(description="Child runs")
    def children_shown(self, obj):
        return run_links(run_children(run=obj))


class StepTableMixin(_Timing):
    """Mix into the steps' inline: each step's status, timing and the child runs it started,
    and, last, a Retry step button on a failed step of a failed run."""

    def get_formset(self, request, obj=None, **kwargs):
        # Inlines are made afresh for each request, so this is this request's answer.
        self.retry_allowed = obj is not None and may_retry(request, obj)
        return super().get_formset(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return (*super().get_fields(request, obj), "retry_shown")

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "retry_shown")

    def get_queryset(self, request):
        children = Prefetch("step_runs__child_run", queryset=Run.objects.select_related("workflow"))
        return super().get_queryset(request).prefetch_related(children)

    @admin.display(description="Retry")
    def retry_shown(self, obj):
        if not getattr(self, "retry_allowed", False) or obj.status != StepStatus.FAILED:
            return "-"
        # The row sits inside the page's form: the button submits the Retry form, outside it.
        return format_html(
            '<button type="submit" class="button" form="{}" name="step" value="{}">'
            "Retry step</button>",
            RETRY_FORM_ID,
            obj.step_id,
        )

    @admin.display(description="Output")
    def output_shown(self, obj):
        # On one line and cut short, so the table keeps its columns; the whole document is
        # in the API and on the dashboard's run page.
        return format_html('<span class="chameleon-brief">{}</span>', brief_json(obj.output) or "-")

    @admin.display(description="Child runs")
    def child_runs(self, obj):
        children = []
        for step_run in obj.step_runs.all():
            try:
                children.append(step_run.child_run)
            except Run.DoesNotExist:
                continue
        return run_links(children)


class ExecutionTableMixin(_Timing):
    """Mix into the step executions' inline: status, timing and the child run, if any."""

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("child_run__workflow")

    @admin.display(description="Due")
    def due_shown(self, obj):
        return when(obj.due_at)

    @admin.display(description="Child run")
    def child_run_shown(self, obj):
        try:
            return run_link(obj.child_run)
        except Run.DoesNotExist:
            return "-"
