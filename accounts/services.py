from django.apps import apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission

from accounts.roles import ROLE_PERMISSIONS


def roles_sync(**_signal_kwargs) -> None:
    """Create the role groups and give each exactly its model permissions (idempotent)."""
    # post_migrate reaches this app before later apps have their permissions; make them first.
    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0)
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        if codenames == ["*"]:
            permissions = Permission.objects.all()
        else:
            pairs = [name.split(".", 1) for name in codenames]
            permissions = [
                Permission.objects.get(content_type__app_label=app, codename=codename)
                for app, codename in pairs
            ]
        group.permissions.set(permissions)
