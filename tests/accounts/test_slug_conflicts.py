"""Slugs are global names. Creating a workflow, provider, agent or guardian whose slug is taken
is the same 409 for everyone: whether the caller may see the holder or not, the answer names
nobody and says nothing more, so it tells no one what they could not already see."""

import pytest
from django.contrib.auth.models import Permission

from tests.workflows.test_api import assert_error, client_for

pytestmark = pytest.mark.django_db

SIM = {"slug": "sim", "kind": "simulated"}
KINDS = {
    "workflow": ("/api/workflows/", "slug: taken\nsteps: [{id: a, tool: noop}]\n", None),
    "provider": ("/api/providers/", {"slug": "taken", "kind": "simulated"}, "add_provider"),
    "agent": (
        "/api/agents/",
        {"slug": "taken", "prompt": "hi", "chain": [{"provider": "sim", "model": "m"}]},
        "add_agent",
    ),
    "guardian": ("/api/guardians/", {"slug": "taken", "kind": "PASS_THRU"}, "add_guardian"),
}


def _creator(make_user, permission):
    """May create this kind, may not see what others made of it."""
    if permission is None:
        return make_user("service")  # workflows: add_workflow, and only its own visible
    user = make_user()
    user.user_permissions.add(Permission.objects.get(codename=permission))
    return user


@pytest.mark.parametrize("kind", KINDS)
def test_a_taken_slug_is_the_same_409_whoever_asks(kind, operator, make_user):
    path, spec, permission = KINDS[kind]
    owner = client_for(operator)
    assert owner.post("/api/providers/", {"spec": SIM}, format="json").status_code == 201
    assert owner.post(path, {"spec": spec}, format="json").status_code == 201
    outsider = client_for(_creator(make_user, permission))
    assert_error(outsider.get(f"{path}taken/"), 404)  # the outsider cannot see it

    seen = owner.post(path, {"spec": spec}, format="json")
    unseen = outsider.post(path, {"spec": spec}, format="json")

    error = assert_error(unseen, 409, "exists")
    assert unseen.json() == seen.json()
    assert error == {
        "code": "exists",
        "message": f"A{'n' if kind == 'agent' else ''} {kind} 'taken' already exists.",
        "details": {"slug": "already exists"},
    }
    assert operator.username not in unseen.content.decode()
