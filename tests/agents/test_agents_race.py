"""Two creates of one agent slug racing are a 201 and a 409, never a 500."""

import pytest
from django.db.models import QuerySet

from agents.models import Agent, AgentVersion
from tests.agents.test_agents_api import AGENT, SIM
from tests.workflows.test_api import assert_error, client_for

pytestmark = pytest.mark.django_db


def test_an_agent_created_between_the_check_and_the_create_is_a_conflict(operator, monkeypatch):
    ops = client_for(operator)
    assert ops.post("/api/providers/", {"spec": SIM}, format="json").status_code == 201
    exists = QuerySet.exists

    def taken_meanwhile(queryset):  # another request creates it after the check
        if queryset.model is Agent:
            monkeypatch.setattr(QuerySet, "exists", exists)
            Agent.objects.create(slug=AGENT["slug"])
            return False
        return exists(queryset)

    monkeypatch.setattr(QuerySet, "exists", taken_meanwhile)

    assert_error(ops.post("/api/agents/", {"spec": AGENT}, format="json"), 409, "exists")
    assert not AgentVersion.objects.exists()
