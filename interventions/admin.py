"""Interventions in the operator's console: read-only (people answer them through the API and
the dashboard, whose services check who may), with their comments and notifications."""

from django.contrib import admin

from config.admin import ReadOnlyAdmin
from interventions.models import Intervention, InterventionComment, Notification


class CommentInline(ReadOnlyAdmin, admin.TabularInline):
    model = InterventionComment
    fields = ("at", "author", "text")
    readonly_fields = fields
    extra = 0


class NotificationInline(ReadOnlyAdmin, admin.TabularInline):
    model = Notification
    fields = ("created_at", "event", "channel", "to", "status", "attempts", "error", "sent_at")
    readonly_fields = fields
    extra = 0


@admin.register(Intervention)
class InterventionAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    list_display = ("created_at", "workflow", "step_id", "type", "priority", "status", "group",
                    "assignee", "claimed_by", "due_at", "resolved_by", "resolved_at")  # fmt: skip
    list_filter = ("status", "type", "priority", "group", "source")
    list_select_related = ("group", "assignee", "claimed_by", "resolved_by")
    search_fields = ("=run_id", "workflow", "step_id", "prompt")
    date_hierarchy = "created_at"
    ordering = ("queue_key",)
    inlines = [CommentInline, NotificationInline]
