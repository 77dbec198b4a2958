"""The workflow page's own buttons: pause, unpause, and start a run with inputs.

Each view checks a permission, calls one service and redirects; the inputs form is built from
the current version's `inputs:` and the engine checks the values (its errors name the input).
"""

from django import forms
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from config.errors import ChameleonError
from workflows import services
from workflows.engine.api import run_start, spec_load_text

_FIELDS = {
    "string": forms.CharField,
    "number": forms.FloatField,
    "integer": forms.IntegerField,
    "object": forms.JSONField,
    "array": forms.JSONField,
}


class RunInputsForm(forms.Form):
    """One field per declared input, prefilled with its default. A field left empty is left
    out, so the engine applies the default (or says the input is required)."""

    def __init__(self, *args, declared: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.declared = declared
        for name, spec in declared.items():
            kind = spec.get("type", "string")
            help_text = f"{kind}{', required' if spec.get('required') else ''}. "
            help_text += spec.get("description", "")
            if kind == "boolean":
                # A checkbox always answers, so a boolean input always gets a value.
                field = forms.BooleanField(required=False)
            else:
                field = _FIELDS[kind](required=False)
                if kind in ("object", "array"):
                    field.widget = forms.Textarea(attrs={"rows": 4, "cols": 60})
            field.initial = spec.get("default")
            field.label = name
            field.help_text = help_text.strip()
            self.fields[name] = field

    def inputs(self) -> dict:
        values = {}
        for name, value in self.cleaned_data.items():
            if self.declared[name].get("type") == "boolean":
                values[name] = bool(value)
            elif value not in (None, ""):
                values[name] = value
        return values

    def add_engine_errors(self, exc: ChameleonError) -> None:
        details = exc.details if isinstance(exc.details, dict) else {}
        for key, message in details.items():
            name = key.removeprefix("inputs.")
            self.add_error(name if name in self.fields else None, f"{name}: {message}")
        if not details:
            self.add_error(None, exc.message)


class WorkflowPagesMixin:
    """Mix into WorkflowAdmin before the ModelAdmin class."""

    change_form_template = "admin/workflows/workflow/change_form.html"  # extends guardian's

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        view = self.admin_site.admin_view
        own = [
            path("<path:object_id>/pause/", view(self.pause_view), name=f"{prefix}_pause"),
            path("<path:object_id>/start/", view(self.start_view), name=f"{prefix}_start"),
        ]
        return own + super().get_urls()

    def _may_run(self, request, workflow) -> bool:
        user = request.user
        return user.has_perm("workflows.run_workflow") or user.has_perm(
            "workflows.run_workflow", workflow
        )

    def _visible(self, request, object_id):
        workflow = self.get_object(request, object_id)  # through get_queryset: hides the unseen
        if workflow is None:
            raise Http404("No such workflow.")
        return workflow

    def change_view(self, request, object_id, form_url="", extra_context=None):
        workflow = self.get_object(request, object_id)
        if workflow is not None:
            extra_context = {
                **(extra_context or {}),
                "may_pause": self.has_change_permission(request, workflow),
                "may_run": self._may_run(request, workflow),
                "workflow_paused": workflow.paused,
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def pause_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        workflow = self._visible(request, object_id)
        if not self.has_change_permission(request, workflow):
            raise PermissionDenied
        paused = request.POST.get("paused") == "1"
        services.workflow_set_paused(workflow=workflow, paused=paused, by=request.user)
        self.log_change(request, workflow, "Paused" if paused else "Unpaused")
        state = "paused: no new runs start" if paused else "unpaused"
        self.message_user(request, f"{workflow.slug} is {state}.")
        return HttpResponseRedirect(reverse("admin:workflows_workflow_change", args=[workflow.pk]))

    def start_view(self, request, object_id):
        workflow = self._visible(request, object_id)
        if not self._may_run(request, workflow):
            raise PermissionDenied
        version = workflow.current_version
        declared = {}
        if version is not None:
            # The canonical spec's keys are sorted by the database; ask in the author's order.
            canonical = version.spec.get("inputs") or {}
            order = spec_load_text(version.source).get("inputs") or {}
            declared = {name: canonical[name] for name in order if name in canonical}
        form = RunInputsForm(request.POST or None, declared=declared)
        if request.method == "POST" and form.is_valid():
            try:
                run, _ = run_start(workflow=workflow, inputs=form.inputs(), started_by=request.user)
            except ChameleonError as exc:
                form.add_engine_errors(exc)
            else:
                url = reverse("admin:workflows_run_change", args=[run.pk])
                link = format_html('<a href="{}">{}</a>', url, run.pk)
                self.message_user(request, format_html("{}: started run {}", workflow.slug, link))
                return HttpResponseRedirect(url)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Start a run of {workflow.slug}",
            "opts": self.opts,
            "original": workflow,
            "version": version,
            "form": form,
            "has_view_permission": True,
        }
        return TemplateResponse(request, "admin/workflows/workflow/start_run.html", context)
