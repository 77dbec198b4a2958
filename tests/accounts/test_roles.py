import pytest
from django.contrib.auth.models import Group
from guardian.shortcuts import get_perms

from accounts.roles import ROLE_PERMISSIONS

pytestmark = pytest.mark.django_db


def test_every_role_is_a_group_holding_exactly_its_model_permissions():
    for role, expected in ROLE_PERMISSIONS.items():
        group = Group.objects.get(name=role)
        granted = {
            f"{app}.{codename}"
            for app, codename in group.permissions.values_list(
                "content_type__app_label", "codename"
            )
        }
        if expected == ["*"]:
            assert "workflows.run_workflow" in granted and len(granted) > 50
        else:
            assert granted == set(expected)


def test_the_creator_of_a_workflow_gets_view_run_and_change_on_it(make_user, make_workflow):
    creator = make_user("service")
    workflow = make_workflow("slug: mine\nsteps:\n  - id: a\n    tool: noop\n", owner=creator)
    assert set(get_perms(creator, workflow)) == {"view_workflow", "run_workflow", "change_workflow"}
    assert get_perms(make_user("service"), workflow) == []
