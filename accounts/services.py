import secrets

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.db import transaction

from accounts.roles import ADMIN, OPERATOR, ROLE_PERMISSIONS


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


@transaction.atomic
def demo_users_reset() -> dict[str, str]:
    """Make one demo user per role with a fresh random password; return {username: password}.

    The admin user is also a superuser. Run by `manage.py up` on embedded defaults only.
    """
    User = get_user_model()
    credentials = {}
    for role in ROLE_PERMISSIONS:
        user, _ = User.objects.get_or_create(username=role)
        user.is_staff = role in (ADMIN, OPERATOR)
        user.is_superuser = role == ADMIN
        password = secrets.token_urlsafe(9)
        user.set_password(password)
        user.save()
        user.groups.add(Group.objects.get(name=role))
        credentials[role] = password
    return credentials
