"""What the dashboard's pages say, as a new user reads them: a waiting step says what it waits
for, a held step retried shows its hold as superseded, an answered intervention's due time is
in the dashboard's one format, a simulated provider is named once, the overview's cost today
says what it adds up, and a viewer's queue shows no keys to move through nothing."""

import re

import pytest
from django.test import Client

from agents.services import agent_create, provider_save
from guardians.services import guardian_create
from interventions.services import intervention_resolve
from tests.interventions.conftest import waiting_on
from tests.interventions.test_flows import APPROVAL

pytestmark = pytest.mark.django_db

HELD = """
slug: held-sign
steps:
  - {id: sign, tool: noop, with: {value: signed}, guard: [always-ask], escalation: {group: legal}}
"""
ASK = """
slug: ask-sim
steps:
  - {id: ask, agent: echoer, with: {question: "why?"}}
"""
MOMENT = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


def html(user, path) -> str:
    client = Client()
    client.force_login(user)
    return client.get(path).content.decode()


def step_rows(page: str) -> list[str]:
    return re.findall(r'<tr id="step-run-.*?</tr>', page, re.S)


@pytest.fixture
def held_run(start, drain, operator):
    guardian_create(source={"slug": "always-ask", "kind": "CRITERIA_GATE",
                            "config": {"all": ["false"], "else": "escalate"}},
                    by=operator)  # fmt: skip
    run = start(HELD)
    drain()
    return run


def test_a_step_waiting_on_an_escalation_says_it_waits_for_a_person(held_run, pilot):
    page = html(pilot, f"/dashboard/runs/{held_run.pk}/?part=steps")

    [row] = step_rows(page)
    assert ">Waiting</span> <span" in row and "· escalated to a person</span>" in row
    assert "on escalated" not in row


def test_a_held_step_retried_shows_its_hold_as_superseded_by_the_attempt_that_ran(
    held_run, pilot, drain
):
    intervention_resolve(intervention_id=waiting_on(held_run).pk, user=pilot, decision="retry")
    drain()

    hold, ran = step_rows(html(pilot, f"/dashboard/runs/{held_run.pk}/?part=steps"))

    assert 'data-superseded="true"' in hold and ">Cancelled</span>" in hold
    assert "Held for a person, who had it run as attempt 1" in hold
    assert (
        '<td class="num"><span class="muted" title="The wait for a person before the step ran">held'
        in hold
    )
    assert 'data-status="SUCCEEDED"' in ran and "data-superseded" not in ran


def test_an_answered_intervention_s_due_time_is_in_the_dashboard_s_format(start, drain, pilot):
    run = start(APPROVAL)
    drain()
    intervention = waiting_on(run)
    intervention_resolve(intervention_id=intervention.pk, user=pilot, decision="approve")

    page = html(pilot, f"/dashboard/interventions/{intervention.pk}/?part=body")

    due = re.search(r"<th>Due</th><td>(.*?)</td>", page, re.S).group(1)
    assert re.search(rf"<time datetime=\"[^\"]+\" title=\"{MOMENT} UTC\">{MOMENT}</time>", due)
    assert not re.search(r"[ap]\.m\.|\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b", page)


def test_a_simulated_provider_named_simulated_is_shown_once(start, drain, pilot, operator):
    provider_save(source={"slug": "simulated", "kind": "simulated"}, by=operator)
    chain = [{"provider": "simulated", "model": "echo-1"}]
    agent_create(source={"slug": "echoer", "prompt": "{{ question }}", "chain": chain}, by=operator)
    run = start(ASK)
    drain()

    page = html(pilot, f"/dashboard/runs/{run.pk}/panels/llm-calls/")

    cell = re.search(r'data-testid="llm-call-provider">(.*?)</td>', page).group(1)
    assert cell == '<span class="badge info">simulated</span>'


def test_the_overview_says_cost_today_is_of_runs_started_today(operator):
    page = html(operator, "/dashboard/overview/")

    assert "of runs started today (UTC)" in page and "since midnight" not in page


def test_the_queue_shows_its_keys_to_a_pilot_but_not_to_a_viewer(make_user, pilot):
    viewer = make_user("viewer")

    assert 'data-testid="queue-keys"' in html(pilot, "/dashboard/")
    viewer_page = html(viewer, "/dashboard/")
    assert 'data-testid="queue-viewer-notice"' in viewer_page
    assert "queue-keys" not in viewer_page and "Enter</kbd> opens" not in viewer_page
