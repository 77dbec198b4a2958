"""How the dashboard writes moments and ages: one format for every moment, and ages that say
"just now" under a minute and that the page's script keeps true (countdown.js, same words)."""

import re
from datetime import UTC, datetime, timedelta

import pytest
from guardian.shortcuts import assign_perm

from tests.conftest import ROOT
from workflows.engine import api
from workflows.formats import age_words
from workflows.templatetags.dashboard_format import age, when

NOW = datetime(2026, 12, 1, 13, 42, 6, tzinfo=UTC)
FLOW = """
slug: aged
steps:
  - {id: only, tool: noop, with: {value: 1}}
"""


@pytest.mark.parametrize(
    ("ago", "words"),
    [(timedelta(seconds=0), "just now"), (timedelta(seconds=59), "just now"),
     (timedelta(seconds=60), "1 minute ago"), (timedelta(minutes=59), "59 minutes ago"),
     (timedelta(hours=2, minutes=5), "2 hours ago"), (timedelta(days=1), "1 day ago"),
     (timedelta(days=45), "45 days ago")],
)  # fmt: skip
def test_an_age_is_its_largest_whole_unit_and_just_now_under_a_minute(ago, words):
    assert age_words(NOW - ago, NOW) == words


def test_countdown_js_words_ages_with_the_same_units():
    source = (ROOT / "static" / "dashboard" / "countdown.js").read_text()

    assert '[[86400, "day"], [3600, "hour"], [60, "minute"]]' in source
    assert '"just now"' in source and "setInterval(ages, 30000)" in source


def test_a_moment_is_written_one_way_with_its_zone_on_hover():
    html = when(NOW)

    assert html == (
        '<time datetime="2026-12-01T13:42:06+00:00" title="2026-12-01 13:42:06 UTC">'
        "2026-12-01 13:42:06</time>"
    )
    assert when(None) == "—"


def test_an_age_is_a_time_element_the_page_can_update():
    html = str(age(NOW))

    assert re.fullmatch(
        r'<time datetime="2026-12-01T13:42:06\+00:00" title="2026-12-01 13:42:06 UTC" '
        r"data-age>(\d+ (minute|hour|day)s? ago|just now)</time>",
        html,
    )


@pytest.mark.django_db
def test_the_runs_list_shows_a_new_run_as_just_now_and_loads_the_script_that_ages_it(
    client, make_user, make_workflow, operator
):
    workflow = make_workflow(FLOW)
    pilot = make_user("pilot")
    assign_perm("workflows.view_workflow", pilot, workflow)
    run = api.run_start(workflow=workflow, inputs={}, started_by=operator)[0]
    client.force_login(pilot)

    html = client.get("/dashboard/runs/").content.decode()

    assert f'<time datetime="{run.created_at.isoformat()}"' in html
    assert re.search(r"data-age>just now</time>", html)
    assert "dashboard/countdown.js" in html
