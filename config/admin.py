"""What the admins share, and the admin's own name (set here: every app's admin imports this)."""

from django.contrib import admin

admin.site.site_header = "Chameleon"
admin.site.site_title = "Chameleon"
admin.site.index_title = "Chameleon console"


class ReadOnlyAdmin:
    """History in the admin (versions, runs, calls, decisions, audit entries): viewed, never
    added, changed or deleted there. Mix in before admin.ModelAdmin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
