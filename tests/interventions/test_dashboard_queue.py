"""The dashboard's queue page: what it lists (what the user may act on, in queue order), its
filters, who sees nothing to answer, its live part and its bounded cost."""

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from guardian.shortcuts import assign_perm

from interventions.dashboard.pages import QUEUE_PAGE
from interventions.models import Intervention, Priority
from tests.interventions.conftest import waiting_on
from tests.interventions.test_flows import APPROVAL, ESCALATING, INPUT
from workflows.models import Run

pytestmark = pytest.mark.django_db
ROW = re.compile(r'data-testid="queue-row" data-id="([0-9a-f-]+)"')


def page(user, query: str = "") -> str:
    client = Client()
    client.force_login(user)
    response = client.get(f"/dashboard/{query}")
    assert response.status_code == 200
    return response.content.decode()


def rows(html: str) -> list[str]:
    return ROW.findall(html)


def copies(intervention: Intervention, count: int, **fields) -> list[Intervention]:
    """`count` more open interventions like `intervention` (same run), made in one INSERT."""
    made = []
    for _ in range(count):
        copy = Intervention(
            run_id=intervention.run_id, step_run_id=intervention.step_run_id,
            step_id=intervention.step_id, workflow=intervention.workflow,
            type=intervention.type, source=intervention.source, group=intervention.group,
            prompt=intervention.prompt, **fields,
        )  # fmt: skip
        copy.queue_key = copy.queue_key_of()
        made.append(copy)
    return Intervention.objects.bulk_create(made)


def approval_workflow(intervention):
    return Run.objects.get(pk=intervention.run_id).workflow


def _opened(start, drain, *sources):
    runs = [start(source) for source in sources]
    drain()
    return [waiting_on(run) for run in runs]


def test_the_queue_lists_by_priority_then_due_time(start, drain, pilot):
    approval, escalation, form = _opened(start, drain, APPROVAL, ESCALATING, INPUT)
    now = timezone.now()
    [soon] = copies(approval, 1, priority=Priority.HIGH, due_at=now + timedelta(minutes=5))
    [low] = copies(approval, 1, priority=Priority.LOW, due_at=now + timedelta(minutes=1))

    html = page(pilot)

    # urgent; high due in 5 min, high due in 4 h; normal without a due time; low
    assert rows(html) == [str(i.pk) for i in (escalation, soon, approval, form, low)]
    assert 'data-testid="queue-priority">urgent<' in html and "Pay 120?" in html


def test_an_overdue_item_says_so_in_words_and_colour(start, drain, pilot):
    [approval] = _opened(start, drain, APPROVAL)
    Intervention.objects.filter(pk=approval.pk).update(due_at=timezone.now() - timedelta(hours=2))

    html = page(pilot)

    assert re.search(r'data-overdue="true"', html)
    assert re.search(r'class="due badge bad"[^>]*data-due="[^"]+"[^>]*>Overdue by 2 h', html)


def test_filters_by_type_group_and_assignee_as_the_api_does(start, drain, pilot, make_user):
    approval, escalation = _opened(start, drain, APPROVAL, ESCALATING)
    [mine] = copies(approval, 1, assignee=pilot)

    assert set(rows(page(pilot, "?type=escalation"))) == {str(escalation.pk)}
    assert set(rows(page(pilot, "?type=approval"))) == {str(approval.pk), str(mine.pk)}
    assert rows(page(pilot, "?assignee=me")) == [str(mine.pk)]
    assert len(rows(page(pilot, "?group=legal"))) == 3
    assert "No open intervention matches" in page(pilot, "?group=nobody")
    html = page(pilot, "?type=nonsense")  # not understood: said, and ignored
    assert 'data-testid="filter-notice"' in html and len(rows(html)) == 3


def test_a_pilot_sees_only_what_they_may_act_on_in_runs_they_may_view(start, drain, make_user):
    [approval] = _opened(start, drain, APPROVAL)
    blind = make_user("pilot")
    blind.groups.add(approval.group)  # in the group, but may not view the workflow
    outsider = make_user("pilot")  # may view the workflow, not in the group
    assign_perm("view_workflow", outsider, approval_workflow(approval))

    assert rows(page(blind)) == [] and rows(page(outsider)) == []
    assert rows(page(make_user("operator"))) == [str(approval.pk)]


def test_a_viewer_sees_a_message_and_links_and_no_form(start, drain, make_user):
    [approval] = _opened(start, drain, APPROVAL)
    viewer = make_user("viewer")
    assign_perm("view_workflow", viewer, approval_workflow(approval))

    html = page(viewer)

    assert 'data-testid="queue-viewer-notice"' in html and rows(html) == []
    assert 'href="/dashboard/runs/"' in html and 'href="/dashboard/overview/"' in html
    assert "<form" not in html.split("<main>")[1]


def test_an_empty_queue_of_a_pilot_is_not_the_viewer_s_message(pilot):
    html = page(pilot)

    assert 'data-testid="queue-empty"' in html and "queue-viewer-notice" not in html


def test_the_live_part_reloads_on_intervention_events_and_renders_the_table_alone(
    start, drain, pilot
):
    [approval] = _opened(start, drain, APPROVAL)

    full = page(pilot, "?type=approval")
    part = page(pilot, "?type=approval&part=table")

    assert 'data-live="/ws/feed/"' in full
    assert 'hx-get="/dashboard/?type=approval&amp;part=table"' in full
    assert 'hx-trigger="live[detail.resync || detail.intervention] from:body"' in full
    assert rows(part) == [str(approval.pk)] and "<html" not in part


def test_a_long_queue_shows_its_first_page_and_counts_the_rest(start, drain, pilot):
    [approval] = _opened(start, drain, APPROVAL)
    copies(approval, QUEUE_PAGE + 20)

    html = page(pilot)

    assert len(rows(html)) == QUEUE_PAGE
    assert f'data-total="{QUEUE_PAGE + 21}"' in html and "21 more" in html


@pytest.mark.parametrize("role", ["pilot", "operator"])
def test_the_queue_renders_in_a_bounded_number_of_queries_however_long_it_is(
    start, drain, pilot, operator, role
):
    [approval] = _opened(start, drain, APPROVAL)
    user = pilot if role == "pilot" else operator
    client = Client()
    client.force_login(user)
    client.get("/dashboard/")  # the session, warm

    def queries(count: int) -> int:
        Intervention.objects.exclude(pk=approval.pk).delete()
        copies(approval, count - 1, assignee=user)
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/dashboard/").status_code == 200
        return len(captured)

    few, more, many = queries(50), queries(QUEUE_PAGE + 50), queries(500)

    assert few <= more == many <= 12  # a full page adds the count of the rest, once


def test_the_group_filter_offers_a_pilot_only_their_own_groups(pilot, make_user, operator):
    Group.objects.create(name="finance")
    groups = re.compile(r'<option value="([^"]+)" >')

    mine = groups.findall(page(pilot).split('id="filter-group"')[1].split("</select>")[0])
    everyone = groups.findall(page(operator).split('id="filter-group"')[1].split("</select>")[0])

    assert mine == ["legal"]
    assert {"finance", "legal"} <= set(everyone) and "pilot" not in everyone
