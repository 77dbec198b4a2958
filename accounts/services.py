import json
import secrets
from pathlib import Path

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
def demo_users_ensure(*, passwords_file: Path) -> dict[str, str]:
    """Make the demo users (one per role; admin is also a superuser) that do not exist yet, each
    with a random password kept in `passwords_file` (readable by its owner only), and return
    {username: password} for those whose password is still the one kept there. Never resets a
    password. Run by `manage.py up` on embedded defaults only."""
    User = get_user_model()
    kept = json.loads(passwords_file.read_text()) if passwords_file.exists() else {}
    for role in ROLE_PERMISSIONS:
        if User.objects.filter(username=role).exists():
            continue
        user = User(username=role, is_staff=role in (ADMIN, OPERATOR), is_superuser=role == ADMIN)
        kept[role] = secrets.token_urlsafe(9)
        user.set_password(kept[role])
        user.save()
        user.groups.add(Group.objects.get(name=role))
    passwords_file.touch(mode=0o600)
    passwords_file.write_text(json.dumps(kept, indent=2))
    users = {user.username: user for user in User.objects.filter(username__in=kept)}
    return {
        name: password
        for name, password in kept.items()
        if name in users and users[name].check_password(password)
    }
