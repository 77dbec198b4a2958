"""The dashboard's runs list and run page: only what the user may view (404 otherwise), newest
first, filters, keyset pages at a bounded query count, the step timeline, parent and child
runs, plug-ins' panels and step links, the events, and the live parts that reload them."""

import pytest
from django.urls import reverse
from django.utils.html import escape
from guardian.shortcuts import assign_perm

from workflows.dashboard import listing
from workflows.engine import api, registry
from workflows.models import Run, RunStatus, StepRun

pytestmark = pytest.mark.django_db

FLOW = """
slug: {slug}
inputs: {{who: {{type: string, default: "world"}}}}
steps:
  - id: greet
    tool: noop
    with: {{value: "hello {{{{ inputs.who }}}}"}}
  - id: shout
    tool: noop
    with: {{value: {{loud: true}}}}
"""
CHILD = """
slug: child
steps:
  - id: double
    tool: noop
    with: {value: 42}
"""
PARENT = """
slug: parent
steps:
  - id: call
    workflow: child
    with: {}
  - id: after
    tool: noop
    with: {value: done}
"""


@pytest.fixture
def flows(make_workflow):
    return make_workflow(FLOW.format(slug="shared")), make_workflow(FLOW.format(slug="foreign"))


@pytest.fixture
def pilot(make_user, flows):
    user = make_user("pilot")
    assign_perm("workflows.view_workflow", user, flows[0])
    return user


@pytest.fixture
def pilot_client(client, pilot):
    client.force_login(pilot)
    return client


def _start(workflow, user, **kwargs) -> Run:
    return api.run_start(workflow=workflow, inputs={}, started_by=user, **kwargs)[0]


def _rows(response) -> list[str]:
    return [str(run.pk) for run in response.context["page"].runs]


# The list


def test_the_list_shows_the_runs_one_may_view_newest_first_with_their_columns(
    pilot_client, flows, operator, drain
):
    first, second = _start(flows[0], operator), _start(flows[0], operator)
    hidden = _start(flows[1], operator)
    drain()

    response = pilot_client.get(reverse("dashboard:runs"))

    html = response.content.decode()
    assert _rows(response) == [str(second.pk), str(first.pk)]
    assert str(hidden.pk)[:8] not in html and "foreign" not in html  # nor in the filter
    assert html.count('data-testid="run-row"') == 2
    assert '<span class="badge ok" data-status="COMPLETED">Completed</span>' in html
    assert ">2/2</td>" in html and "$0.00" in html and operator.username in html
    assert f'href="{reverse("dashboard:run", args=[first.pk])}"' in html
    assert 'data-live="/ws/feed/"' in html
    assert "live[detail.resync || detail.run_status || detail.run_created] from:body" in html


def test_the_list_filters_by_status_and_workflow(client, flows, operator, drain):
    done = _start(flows[0], operator)
    drain()
    running, other = _start(flows[0], operator), _start(flows[1], operator)
    client.force_login(operator)
    url = reverse("dashboard:runs")

    assert _rows(client.get(url, {"status": "COMPLETED"})) == [str(done.pk)]
    assert _rows(client.get(url, {"status": "RUNNING", "workflow": "shared"})) == [str(running.pk)]
    assert _rows(client.get(url, {"workflow": "foreign"})) == [str(other.pk)]
    assert len(_rows(client.get(url, {"status": "NOT-A-STATUS"}))) == 3  # an unknown one: all
    empty = client.get(url, {"status": "FAILED"}).content.decode()
    assert "No runs match these filters." in empty


def test_the_list_pages_by_cursor_through_every_run_once(client, flows, operator, monkeypatch):
    monkeypatch.setattr(listing, "PAGE_SIZE", 2)
    started = [_start(flows[0], operator) for _ in range(5)]
    client.force_login(operator)

    seen, query = [], {"workflow": "shared"}
    while True:
        response = client.get(reverse("dashboard:runs"), query)
        seen += _rows(response)
        cursor = response.context["page"].next_cursor
        if cursor is None:
            break
        query = {"workflow": "shared", "before": cursor}

    assert seen == [str(run.pk) for run in reversed(started)]


def test_the_table_part_reloads_alone_with_the_same_filters(pilot_client, flows, operator):
    _start(flows[0], operator)

    response = pilot_client.get(reverse("dashboard:runs"), {"part": "table", "status": "RUNNING"})

    html = response.content.decode()
    assert 'data-testid="run-row"' in html and "<html" not in html and "<form" not in html


def test_the_table_reloads_on_status_changes_at_once_and_on_progress_and_cost_paced(
    pilot_client,
):
    html = pilot_client.get(reverse("dashboard:runs")).content.decode()

    table = html.split('<div id="runs-table"')[1].split(">")[0]
    assert "detail.run_status || detail.run_created] from:body, live-paced" in table
    assert 'data-live-on="step_completed run_cost" data-live-gap-ms="3000"' in table


@pytest.mark.parametrize("runs", [2, 40])
def test_the_list_costs_a_bounded_number_of_queries_whatever_the_runs(
    pilot_client, flows, operator, runs, django_assert_max_num_queries
):
    for _ in range(runs):
        _start(flows[0], operator)

    with django_assert_max_num_queries(7):
        response = pilot_client.get(reverse("dashboard:runs"))

    assert len(_rows(response)) == runs


# The run page


def test_a_run_one_may_not_view_is_a_404_in_every_part(pilot_client, flows, operator):
    hidden = _start(flows[1], operator)
    url = reverse("dashboard:run", args=[hidden.pk])

    for part in (None, "summary", "steps", "links", "events"):
        query = {"part": part} if part else {}
        assert pilot_client.get(url, query).status_code == 404
    assert pilot_client.get(url, {"part": "nothing"}).status_code == 404


def test_the_run_page_shows_the_run_its_step_timeline_its_panels_and_its_events(
    pilot_client, flows, operator, drain
):
    run = _start(flows[0], operator, budget_usd="1.50", ctx={"schedule": "nightly"})
    drain()
    run.refresh_from_db()

    response = pilot_client.get(reverse("dashboard:run", args=[run.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="run-status" data-testid="run-status" data-status="COMPLETED"' in html
    assert "shared</strong> version 1" in html and "$1.50" in html
    assert 'through schedule <strong data-testid="run-schedule">nightly</strong>' in html
    assert escape('"who": "world"') in html  # the inputs
    steps = [row.step_run for row in response.context["step_rows"]]
    assert [(s.step_id, s.kind, s.status, s.attempt) for s in steps] == [
        ("greet", "tool", "SUCCEEDED", 1), ("shout", "tool", "SUCCEEDED", 1)
    ]  # fmt: skip
    assert html.count('data-testid="step-row"') == 2
    assert escape('"hello world"') in html and escape('{"loud": true}') in html
    for panel in ("llm-calls", "guardian-decisions"):
        assert f'data-testid="panel-{panel}"' in html
    seqs = [event.seq for event in response.context["events"]]
    assert seqs == sorted(seqs) and seqs[-1] == run.event_seq  # newest last
    assert html.count('data-testid="event-row"') == run.event_seq
    assert '<td class="mono">run.status</td>' in html
    assert f'data-live="/ws/runs/{run.pk}/"' in html


def test_each_part_of_the_run_page_reloads_alone(pilot_client, flows, operator, drain):
    run = _start(flows[0], operator)
    url = reverse("dashboard:run", args=[run.pk])
    before = pilot_client.get(url, {"part": "steps"}).content.decode()
    drain()

    steps = pilot_client.get(url, {"part": "steps"}).content.decode()
    summary = pilot_client.get(url, {"part": "summary"}).content.decode()
    events = pilot_client.get(url, {"part": "events"}).content.decode()

    assert 'data-status="SUCCEEDED"' not in before
    assert steps.count('<span class="badge ok" data-status="SUCCEEDED">') == 2
    assert "<html" not in steps
    assert 'data-status="COMPLETED"' in summary and "Steps" not in summary
    assert 'data-testid="event-row"' in events and 'data-testid="step-row"' not in events
    assert "hx-trigger" in pilot_client.get(url).content.decode()


def test_parent_and_child_runs_link_each_other_and_only_when_visible(
    client, make_user, make_workflow, operator, drain
):
    make_workflow(CHILD)
    parent_flow = make_workflow(PARENT)
    run = _start(parent_flow, operator)
    drain()
    child = Run.objects.get(parent_run=run)
    client.force_login(operator)

    page = client.get(reverse("dashboard:run", args=[run.pk])).content.decode()
    child_page = client.get(reverse("dashboard:run", args=[child.pk])).content.decode()

    child_url, parent_url = (reverse("dashboard:run", args=[r.pk]) for r in (child, run))
    assert f'<a href="{child_url}" data-testid="run-child">' in page
    assert f'<a href="{child_url}" data-testid="step-child-run">' in page  # on the step's row
    assert f'<a href="{parent_url}" data-testid="run-parent">' in child_page

    parents_only = make_user("pilot")
    assign_perm("workflows.view_workflow", parents_only, parent_flow)
    client.force_login(parents_only)
    page = client.get(reverse("dashboard:run", args=[run.pk])).content.decode()
    assert child_url not in page
    assert client.get(child_url).status_code == 404


def test_a_plugin_s_step_links_show_on_the_rows_of_the_step_runs_it_names(
    pilot_client, flows, operator, monkeypatch, drain
):
    monkeypatch.setattr(registry, "_step_links", {})
    run = _start(flows[0], operator)
    drain()
    shout = StepRun.objects.get(run=run, step_id="shout")
    api.step_links_register("notes", lambda run, user: {shout.pk: ("Its note", "/notes/1/")})

    html = pilot_client.get(reverse("dashboard:run", args=[run.pk])).content.decode()

    assert html.count('data-testid="step-link"') == 1
    row = html[html.index(f'id="step-run-{shout.pk}"') :]
    link = '<a href="/notes/1/" data-testid="step-link">Its note</a>'
    assert row.index(link) < row.index("</tr>")


def test_a_run_not_yet_executed_shows_its_steps_queued(pilot_client, flows, operator):
    run = _start(flows[0], operator)

    html = pilot_client.get(reverse("dashboard:run", args=[run.pk])).content.decode()

    assert Run.objects.get(pk=run.pk).status == RunStatus.RUNNING
    assert 'data-testid="run-status" data-status="RUNNING"' in html
    assert '<span class="badge" data-status="PENDING">Pending</span>' in html
    assert "not started" not in html  # an unstarted step has no duration yet


def test_a_failed_step_shows_its_error_and_a_skipped_one_its_reason_without_alarm(
    pilot_client, flows, operator, drain
):
    run = _start(flows[0], operator)
    drain()
    greet, shout = StepRun.objects.filter(run=run).order_by("created_at")
    StepRun.objects.filter(pk=greet.pk).update(status="FAILED", error="boom: the tool broke")
    StepRun.objects.filter(pk=shout.pk).update(status="SKIPPED", error="skip by ann")

    html = pilot_client.get(reverse("dashboard:run", args=[run.pk]), {"part": "steps"}).content
    html = html.decode()

    assert '<span class="badge bad">error</span> boom: the tool broke' in html
    assert '<span class="muted">skip by ann</span>' in html
