import pytest
from django.contrib.auth.models import Group
from guardian.shortcuts import assign_perm

from interventions.models import Intervention
from workflows.engine import api
from workflows.models import Run


@pytest.fixture
def legal(db) -> Group:
    return Group.objects.get_or_create(name="legal")[0]


@pytest.fixture
def pilot(make_user, legal):
    """A pilot in the legal group who may view every workflow the tests make (granted per
    workflow by `start`)."""
    user = make_user("pilot")
    user.groups.add(legal)
    return user


@pytest.fixture
def start(make_workflow, operator, pilot):
    """Start a run of `source` (a workflow the pilot may view), by the operator."""

    def start(source: str, inputs=None, **ctx) -> Run:
        workflow = make_workflow(source)
        assign_perm("view_workflow", pilot, workflow)
        return api.run_start(workflow=workflow, inputs=inputs or {}, started_by=operator,
                             ctx=ctx)[0]  # fmt: skip

    return start


def waiting_on(run: Run) -> Intervention:
    """The run's one open (or claimed) intervention."""
    return Intervention.objects.get(run_id=run.pk, status__in=["OPEN", "CLAIMED"])
