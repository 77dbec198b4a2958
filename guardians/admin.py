"""Guardians in the operator's console: created and published from a spec through the same
services as the API, and dry-run on a sample context from the guardian's page. Versions and
decisions are history: read-only."""

import json

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path

from config.admin import ReadOnlyAdmin
from config.forms import VersionedSpecForm
from guardians.models import Guardian, GuardianDecision, GuardianVersion
from guardians.selectors import guardian_dry_run
from guardians.services import guardian_create, guardian_version_publish

SAMPLE = {
    "inputs": {},
    "state": {},
    "steps": {"risk": {"status": "SUCCEEDED", "output": {"score": 0.5}}},
    "run": {"cost_usd": 0.0, "age_s": 0.0},
}


class GuardianForm(VersionedSpecForm):
    create, publish = staticmethod(guardian_create), staticmethod(guardian_version_publish)
    publishes = "guardian"

    class Meta(VersionedSpecForm.Meta):
        model = Guardian


class DryRunForm(forms.Form):
    payload = forms.JSONField(
        label="Sample context (JSON)",
        initial=SAMPLE,
        widget=forms.Textarea(attrs={"rows": 12, "style": "font-family: monospace; width: 90%;"}),
        help_text="inputs, state, ctx, steps ({id: {status, output}}), run ({cost_usd, age_s})",
    )

    def clean_payload(self):
        payload = self.cleaned_data["payload"]
        if not isinstance(payload, dict):
            raise forms.ValidationError("The sample context must be a JSON object.")
        return payload


@admin.register(Guardian)
class GuardianAdmin(admin.ModelAdmin):
    form = GuardianForm
    list_display = ("slug", "kind", "version_number", "updated_at")
    search_fields = ("slug",)
    list_select_related = ("current_version",)
    fields = ("spec_source",)
    change_form_template = "admin/guardians/guardian/change_form.html"

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.author = request.user
        return form

    def save_model(self, request, obj, form, change):
        """The form's service call saved it already."""

    def has_delete_permission(self, request, obj=None):
        return False  # runs' decisions name its versions

    @admin.display(description="kind")
    def kind(self, guardian):
        return guardian.current_version.kind if guardian.current_version_id else None

    @admin.display(description="version")
    def version_number(self, guardian):
        return guardian.current_version.number if guardian.current_version_id else None

    def get_urls(self):
        view = self.admin_site.admin_view(self.dry_run_view)
        dry_run = path("<int:pk>/dry-run/", view, name="guardians_guardian_dry_run")
        return [dry_run, *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {**(extra_context or {}), "dry_run_form": DryRunForm()}
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def dry_run_view(self, request, pk):
        """Evaluate the current version on the posted sample context; no run is touched."""
        guardian = get_object_or_404(Guardian, pk=pk)
        if not self.has_view_permission(request, guardian):
            raise PermissionDenied
        form = DryRunForm(request.POST or None)
        verdict = None
        if request.method == "POST" and form.is_valid():
            verdict = guardian_dry_run(guardian=guardian, payload=form.cleaned_data["payload"])
        context = {
            **self.admin_site.each_context(request),
            "title": f"Dry run of {guardian.slug}",
            "opts": self.model._meta,
            "original": guardian,
            "form": form,
            "verdict": verdict,
            "evidence": json.dumps(verdict.evidence, indent=2, default=str) if verdict else "",
        }
        return TemplateResponse(request, "admin/guardians/guardian/dry_run.html", context)


class _HistoryAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    pass


@admin.register(GuardianVersion)
class GuardianVersionAdmin(_HistoryAdmin):
    list_display = ("guardian", "number", "kind", "on_error", "published_by", "published_at")
    list_filter = ("kind",)
    list_select_related = ("guardian", "published_by")
    readonly_fields = ("guardian", "number", "kind", "on_error", "checksum", "published_by",
                       "published_at", "spec_json")  # fmt: skip
    exclude = ("spec", "config")

    @admin.display(description="spec")
    def spec_json(self, version):
        return json.dumps(version.spec, indent=2)


@admin.register(GuardianDecision)
class GuardianDecisionAdmin(_HistoryAdmin):
    list_display = ("at", "workflow", "run_id", "step_id", "guardian_version", "outcome", "reason")
    list_filter = ("outcome", "guardian_version__kind", "workflow")
    list_select_related = ("guardian_version__guardian",)
    search_fields = ("=run_id", "step_id", "guardian_version__guardian__slug")
    date_hierarchy = "at"
