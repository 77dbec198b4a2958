"""Signing in to the dashboard in a real browser."""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import sign_in

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_pilot_signs_in_at_login_and_lands_on_the_dashboard(page, make_user):
    pilot = make_user("pilot")
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login/"))

    sign_in(page, pilot)

    expect(page.locator("header")).to_contain_text(pilot.username)


def test_a_wrong_password_keeps_the_pilot_on_the_sign_in_page_with_the_reason(page, make_user):
    pilot = make_user("pilot")
    page.goto("/login/")
    page.get_by_label("Username").fill(pilot.username)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()

    expect(page.get_by_role("alert")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/login/"))
