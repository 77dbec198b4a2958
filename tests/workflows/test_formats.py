"""Statuses, moments and durations are written one way, in workflows/formats.py: the admin and
the dashboard only wrap them in their own look, and the countdown script words durations as
the server does."""

from datetime import UTC, datetime, timedelta

import pytest

from interventions.dashboard.display import due_text
from tests.conftest import ROOT
from workflows import admin_runs, formats
from workflows.templatetags import dashboard_format

NOW = datetime(2026, 12, 1, 13, 42, 6, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0, "0 s"), (1.234, "1.23 s"), (5, "5 s"), (42, "42 s"), (75, "1 min 15 s"),
     (3 * 3600 + 240, "3 h 04 min"), (3 * 86400 + 7200, "3 d 2 h")],
)  # fmt: skip
def test_durations_read_as_a_person_says_them(seconds, words):
    assert formats.duration_words(seconds) == words


def test_a_due_time_counts_down_in_the_same_words():
    assert due_text(NOW + timedelta(seconds=75), NOW) == ("in 1 min 15 s", False)
    assert due_text(NOW - timedelta(hours=2), NOW) == ("Overdue by 2 h 00 min", True)


def test_the_overview_words_a_breach_s_lateness_in_the_same_words():
    source = (ROOT / "templates" / "dashboard" / "parts" / "overview_figures.html").read_text()

    assert "overdue by {{ item.due_at|since }}" in source and "timesince" not in source
    assert dashboard_format.since(datetime.now(UTC) - timedelta(hours=2, minutes=5)) == (
        "2 h 05 min"
    )


def test_countdown_js_words_durations_with_the_same_units():
    source = (ROOT / "static" / "dashboard" / "countdown.js").read_text()

    for unit in ('" s"', '" min "', '" h "', '" d "'):
        assert unit in source
    assert "hours < 48" in source and "pad(seconds % 60)" in source


def test_the_dashboard_and_the_admin_write_a_status_from_one_table():
    dashboard = dashboard_format.status_badge("COMPLETED")
    admin = admin_runs.status_badge("COMPLETED")

    assert dashboard == '<span class="badge ok" data-status="COMPLETED">Completed</span>'
    assert admin.startswith('<span class="chameleon-status ok" data-status="COMPLETED" style=')
    assert "#15803d" in admin and admin.endswith(">Completed</span>")


def test_the_admin_writes_a_moment_as_the_dashboard_does_and_adds_its_age():
    moment = formats.when(NOW)

    assert dashboard_format.when(NOW) == moment
    assert admin_runs.when(NOW).startswith(f'{moment} <span class="quiet">(')


def test_the_dashboard_s_formats_do_not_reach_into_the_admin():
    source = (ROOT / "workflows" / "templatetags" / "dashboard_format.py").read_text()

    assert "admin_runs" not in source
