"""Plug-ins' panels about a run (api.run_panel_register): any dashboard page renders them with
`{% run_panels run %}`, each reloads itself from its own URL, and nobody sees a panel of a run
they may not view. Agents show the run's LLM calls, guardians its decisions."""

import pytest
from django.template import Context, Template
from django.test import RequestFactory
from django.urls import reverse
from django.utils.html import escape
from guardian.shortcuts import assign_perm

from agents.services import agent_create, provider_save
from guardians.services import guardian_create
from workflows import selectors
from workflows.engine import api, registry

pytestmark = pytest.mark.django_db

FLOW = """
slug: {slug}
steps:
  - id: only
    tool: noop
    with: {{value: 1}}
"""
GUARDED_ASK = """
slug: guarded-ask
steps:
  - id: ask
    agent: echoer
    with: {question: "why?"}
    guard: [audit-point]
"""


@pytest.fixture
def notes_panel(monkeypatch, settings, tmp_path):
    """A plug-in's panel (template and context of its own), forgotten after the test."""
    monkeypatch.setattr(registry, "_run_panels", dict(registry._run_panels))
    (tmp_path / "notes.html").write_text(
        "<p data-testid='notes'>{{ note }} for {{ username }} about {{ run.workflow.slug }}</p>"
    )
    engine = settings.TEMPLATES[0]
    settings.TEMPLATES = [{**engine, "DIRS": [*engine["DIRS"], tmp_path]}]

    def context(run, user):
        return {"note": "Noted", "username": user.get_username()}

    return api.run_panel_register("notes", "notes.html", context, reload_on=("notes.",))


@pytest.fixture
def pilot_and_runs(make_user, make_workflow, operator):
    shared, foreign = (make_workflow(FLOW.format(slug=slug)) for slug in ("shared", "foreign"))
    pilot = make_user("pilot")
    assign_perm("workflows.view_workflow", pilot, shared)
    visible, _ = api.run_start(workflow=shared, inputs={}, started_by=operator)
    hidden, _ = api.run_start(workflow=foreign, inputs={}, started_by=operator)
    return pilot, visible, hidden


def _render(source: str, user, run) -> str:
    request = RequestFactory().get("/dashboard/")
    request.user = user
    return Template(source).render(Context({"request": request, "run": run}))


def test_every_registered_panel_renders_in_its_live_element_with_the_plugin_s_context(
    notes_panel, pilot_and_runs
):
    pilot, visible, _ = pilot_and_runs
    run = selectors.run_get_visible(user=pilot, run_id=visible.pk)

    html = _render("{% load run_panels %}{% run_panels run %}", pilot, run)

    assert f"Noted for {pilot.username} about shared" in html
    assert 'id="panel-notes"' in html and 'data-testid="panel-notes"' in html
    assert f'hx-get="{reverse("dashboard:run-panel", args=[run.pk, "notes"])}"' in html
    wanted = f"live[detail.resync || (detail.runs['{run.pk}'] && (detail.notes))] from:body"
    assert escape(wanted) in html
    assert 'id="panel-llm-calls"' in html and 'id="panel-guardian-decisions"' in html


def test_a_page_may_show_only_the_panels_it_names(notes_panel, pilot_and_runs):
    pilot, visible, _ = pilot_and_runs
    run = selectors.run_get_visible(user=pilot, run_id=visible.pk)

    html = _render('{% load run_panels %}{% run_panels run only="notes" %}', pilot, run)

    assert 'id="panel-notes"' in html and "panel-llm-calls" not in html


def test_a_panel_reloads_from_its_url_and_is_a_404_for_a_run_one_may_not_view(
    notes_panel, pilot_and_runs, client
):
    pilot, visible, hidden = pilot_and_runs
    client.force_login(pilot)

    shown = client.get(reverse("dashboard:run-panel", args=[visible.pk, "notes"]))
    hidden_run = client.get(reverse("dashboard:run-panel", args=[hidden.pk, "notes"]))
    unknown = client.get(reverse("dashboard:run-panel", args=[visible.pk, "nothing"]))

    assert shown.status_code == 200 and b"Noted for" in shown.content
    assert (hidden_run.status_code, unknown.status_code) == (404, 404)


def test_a_panel_name_is_a_slug_and_is_taken_once(notes_panel):
    with pytest.raises(ValueError, match="slug"):
        api.run_panel_register("my notes", "notes.html", dict)
    with pytest.raises(ValueError, match="registered already"):
        api.run_panel_register("notes", "other.html", dict)
    again = api.run_panel_register(
        "notes", notes_panel.template, notes_panel.context, reload_on=("notes.",)
    )
    assert again == notes_panel


def test_agents_and_guardians_show_the_run_s_llm_calls_and_decisions(
    make_workflow, operator, admin_client, drain
):
    provider_save(source={"slug": "sim", "kind": "simulated"}, by=operator)
    chain = [{"provider": "sim", "model": "echo-1"}]
    agent_create(source={"slug": "echoer", "prompt": "{{ question }}", "chain": chain}, by=operator)
    guardian_create(source={"slug": "audit-point", "kind": "PASS_THRU", "config": {}}, by=operator)
    run, _ = api.run_start(workflow=make_workflow(GUARDED_ASK), inputs={}, started_by=operator)
    drain()

    def panel(name):
        return admin_client.get(reverse("dashboard:run-panel", args=[run.pk, name]))

    calls, decisions = panel("llm-calls"), panel("guardian-decisions")

    calls_html, decisions_html = calls.content.decode(), decisions.content.decode()
    assert "1 call · " in calls_html and calls_html.count('data-testid="llm-call"') == 1
    for shown in ("echoer v1", "sim", "echo-1", ">Ok</span>", "$0.00", " ms"):
        assert shown in calls_html
    assert decisions_html.count('data-testid="guardian-decision"') == 1
    for shown in ("1 allow", "audit-point v1", "PASS_THRU", ">Allow</span>"):
        assert shown in decisions_html
