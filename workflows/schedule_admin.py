"""The schedules' admin: every save is one call to workflows.schedules.schedule_save."""

from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from config.errors import ChameleonError
from workflows import schedules
from workflows.models import Schedule
from workflows.selectors import workflows_visible_to

FORM_FIELDS = ("name", "workflow", "cron", "interval_seconds", "inputs", "enabled")


class ScheduleForm(forms.ModelForm):
    """Validation and saving are one service call, made from `clean()` so each refusal lands on
    its field (a cron expression that does not parse says why under `cron`)."""

    class Meta:
        model = Schedule
        fields = FORM_FIELDS

    by = None  # set per request by ScheduleAdmin.get_form

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            self.instance = schedules.schedule_save(
                schedule=self.instance if self.instance.pk else None,
                name=cleaned.get("name", ""),
                workflow=cleaned["workflow"],
                cron=cleaned.get("cron", ""),
                interval_seconds=cleaned.get("interval_seconds"),
                inputs=cleaned.get("inputs"),
                enabled=cleaned.get("enabled", False),
                by=self.by,
            )
        except ChameleonError as exc:
            details = exc.details if isinstance(exc.details, dict) else {}
            for path, message in details.items():
                field = path.split(".")[0]
                self.add_error(field if field in FORM_FIELDS else None, f"{path}: {message}")
            if not details:
                self.add_error(None, exc.message)
        return cleaned


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    form = ScheduleForm
    list_display = ("name", "workflow", "when", "enabled", "owner", "last_run_link", "last_error")
    list_filter = ("enabled",)
    list_select_related = ("workflow", "owner", "last_run")
    search_fields = ("name", "workflow__slug")
    readonly_fields = ("owner", "last_run_link", "last_error", "created_at", "updated_at")
    fieldsets = [
        (None, {"fields": FORM_FIELDS}),
        ("Runs", {"fields": ("owner", "last_run_link", "last_error", "created_at", "updated_at")}),
    ]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(workflow__in=workflows_visible_to(request.user).values("pk"))

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        form.by = request.user  # modelform_factory made this class for this request
        form.base_fields["workflow"].queryset = workflows_visible_to(request.user)
        return form

    def save_model(self, request, obj, form, change):
        """The form's service call already saved."""

    def delete_model(self, request, obj):
        schedules.schedule_delete(schedule=obj, by=request.user)

    def delete_queryset(self, request, queryset):
        for schedule in queryset:
            schedules.schedule_delete(schedule=schedule, by=request.user)

    @admin.display(description="When")
    def when(self, obj):
        return obj.cron or f"every {obj.interval_seconds} s"

    @admin.display(description="Last run")
    def last_run_link(self, obj):
        if obj.last_run_id is None:
            return "-"
        url = reverse("admin:workflows_run_change", args=[obj.last_run_id])
        return format_html('<a href="{}">{}</a>', url, obj.last_run_id)
