from django.apps import AppConfig
from django.db.models.signals import post_migrate, pre_save


class AccountsConfig(AppConfig):
    name = "accounts"

    def ready(self):
        from axes.signals import user_locked_out
        from django.contrib.auth import get_user_model

        from accounts.lockout import lockout_audit
        from accounts.services import roles_sync
        from accounts.tokens import tokens_revoke_on_deactivation

        # Permissions exist only after post_migrate, so roles are synced then (and after test
        # flushes, which emit it too) rather than in a data migration that would find none.
        post_migrate.connect(roles_sync, sender=self, dispatch_uid="accounts.roles_sync")
        user_locked_out.connect(lockout_audit, dispatch_uid="accounts.lockout_audit")
        pre_save.connect(tokens_revoke_on_deactivation, sender=get_user_model(),
                         dispatch_uid="accounts.tokens_revoke_on_deactivation")  # fmt: skip
