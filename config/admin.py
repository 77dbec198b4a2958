"""What the admins share."""


class ReadOnlyAdmin:
    """History in the admin (versions, runs, calls, decisions, audit entries): viewed, never
    added, changed or deleted there. Mix in before admin.ModelAdmin."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
