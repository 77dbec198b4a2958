"""A page catches up whenever its socket opens (what happened between its rendering and its
subscription), and when the server closes its socket because its user's access changed: a tab
whose session was signed out elsewhere goes to the sign-in page."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import signed_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_page_reloads_its_live_parts_once_its_socket_is_open(new_page, make_pilot):
    queue = signed_in(new_page, make_pilot())

    with queue.expect_request(lambda request: "part=" in request.url):
        queue.goto("/dashboard/")
    expect(queue.locator("#live-status")).to_have_text("Live")


def test_a_tab_signed_out_in_another_goes_to_the_sign_in_page(new_page, make_pilot):
    queue = signed_in(new_page, make_pilot())
    other = queue.context.new_page()  # the same browser profile: the same session
    other.goto("/dashboard/runs/")

    other.get_by_role("button", name="Sign out").click()

    expect(other).to_have_url(re.compile(r"/login/"))
    expect(queue).to_have_url(re.compile(r"/login/\?next=%2Fdashboard%2F$"))
