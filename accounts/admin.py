from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from accounts.models import AuditEntry, User
from config.admin import ReadOnlyAdmin

admin.site.register(User, UserAdmin)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin, admin.ModelAdmin):
    """The audit log, read-only: entries are written by the services that perform the acts."""

    list_display = ("at", "actor_name", "action", "object_type", "object_id", "object_repr", "ip")
    list_filter = ("action", "object_type", "actor_name")
    search_fields = ("=object_id", "object_repr", "actor_name")
    date_hierarchy = "at"
    readonly_fields = [field.name for field in AuditEntry._meta.fields]
