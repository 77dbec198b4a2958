"""Providers and agents from the operator's console: specs validated with their paths, nothing
saved when wrong, breakers shown and reset, calls and their cost per workflow per day."""

import pytest
from django.urls import reverse

from agents import breaker
from agents.models import Agent, LLMCall, Provider
from agents.specs import BreakerSpec
from workflows.engine import api

pytestmark = pytest.mark.django_db

PROVIDER = "slug: sim\nkind: simulated\nbreaker: {failures: 1}\n"
AGENT = "slug: helper\nprompt: 'Help with {{ topic }}'\nchain: [{provider: sim, model: m}]\n"


@pytest.fixture
def console(client, operator):
    operator.is_staff = True
    operator.save(update_fields=["is_staff"])
    client.force_login(operator)
    return client


def test_a_provider_and_an_agent_are_added_from_their_specs(console):
    bad = console.post(
        reverse("admin:agents_provider_add"), {"spec_source": "slug: x\nkind: openai"}
    )
    assert "needs base_url" in bad.content.decode() and not Provider.objects.exists()

    console.post(reverse("admin:agents_provider_add"), {"spec_source": PROVIDER})
    unknown = AGENT.replace("provider: sim", "provider: gone")
    refused = console.post(reverse("admin:agents_agent_add"), {"spec_source": unknown})
    console.post(reverse("admin:agents_agent_add"), {"spec_source": AGENT})

    assert "chain[0].provider: unknown provider" in refused.content.decode()
    assert Provider.objects.get().kind == "simulated"
    agent = Agent.objects.get()
    assert agent.current_version.number == 1
    change = reverse("admin:agents_agent_change", args=[agent.pk])
    console.post(change, {"spec_source": AGENT.replace("Help", "Please help")})
    agent.refresh_from_db()
    assert agent.current_version.number == 2


def test_the_console_shows_a_breaker_and_resets_it(console):
    console.post(reverse("admin:agents_provider_add"), {"spec_source": PROVIDER})
    config = BreakerSpec(failures=1)
    breaker.breaker_record("sim", config, breaker.breaker_permit("sim", config), ok=False)

    listing = console.get(reverse("admin:agents_provider_changelist")).content.decode()
    console.post(
        reverse("admin:agents_provider_changelist"),
        {"action": "reset_breakers", "_selected_action": [Provider.objects.get().pk]},
    )

    assert "open" in listing
    assert breaker.breaker_state("sim", config).state == "closed"


def test_calls_are_listed_and_costed_per_workflow_per_day(console, operator, make_workflow, drain):
    console.post(reverse("admin:agents_provider_add"), {"spec_source": PROVIDER})
    console.post(reverse("admin:agents_agent_add"), {"spec_source": AGENT})
    workflow = make_workflow("slug: helped\nsteps: [{id: ask, agent: helper, with: {topic: tea}}]")
    api.run_start(workflow=workflow, inputs={}, started_by=operator)
    drain()

    calls = console.get(reverse("admin:agents_llmcall_changelist"))
    costs = console.get(reverse("admin:agents_costs"))

    assert calls.status_code == 200 and "helped" in calls.content.decode()
    assert costs.status_code == 200
    assert "<td>helped</td><td>1</td>" in costs.content.decode()
    assert LLMCall.objects.get().workflow == "helped"


def test_the_run_s_admin_page_links_to_its_llm_calls(console, operator, make_workflow, drain):
    console.post(reverse("admin:agents_provider_add"), {"spec_source": PROVIDER})
    console.post(reverse("admin:agents_agent_add"), {"spec_source": AGENT})
    workflow = make_workflow("slug: helped\nsteps: [{id: ask, agent: helper, with: {topic: tea}}]")
    run, _ = api.run_start(workflow=workflow, inputs={}, started_by=operator)
    drain()

    page = console.get(reverse("admin:workflows_run_change", args=[run.pk])).content.decode()
    url = f"{reverse('admin:agents_llmcall_changelist')}?q={run.pk}"
    calls = console.get(url).content.decode()

    assert f'href="{url}"' in page
    assert str(run.pk) in calls and "ask" in calls
