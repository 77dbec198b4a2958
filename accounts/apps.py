from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self):
        from accounts.services import roles_sync

        # Permissions exist only after post_migrate, so roles are synced then (and after test
        # flushes, which emit it too) rather than in a data migration that would find none.
        post_migrate.connect(roles_sync, sender=self, dispatch_uid="accounts.roles_sync")
