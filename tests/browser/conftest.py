"""The dashboard in real headless Chromium (Debian's `chromium`, driven by Playwright) against
a real ASGI server: uvicorn serving config.asgi:application in a subprocess, on the test
database and the test Redis, beside a real Celery worker.

Playwright's sync API keeps an event loop running in this thread while Chromium is open, so
Django's ORM (which refuses to run inside one) is told the loop is not its business for as long
as the browser is open: the package's tests only, as the browser is closed after the last one.
"""

import os
import re
import shutil
import subprocess
import sys
import time

import httpx
import pytest
from django.contrib.auth.models import Group
from guardian.shortcuts import assign_perm
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import ROOT, _free_port, worker_environment
from tests.test_restarts import _required, own_redis  # noqa: F401 (a fixture, for the tests here)

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1280, "height": 800}
SCREENSHOTS = ROOT / "docs" / "screenshots"
expect.set_options(timeout=10_000)  # a hang guard: Playwright waits only until it is true


class AsgiServer:
    """uvicorn on a free port, as the Docker image runs it, serving config.asgi:application
    (through tests/browser/asgi.py: see there why)."""

    def __init__(self, env: dict[str, str]):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [sys.executable, "-m", "uvicorn", "tests.browser.asgi:application",
                   "--host", "127.0.0.1", "--port", str(self.port),
                   "--lifespan", "off", "--log-level", "warning", "--no-access-log"]  # fmt: skip
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, start_new_session=True)
        self._wait_until_up()

    def _wait_until_up(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"uvicorn did not start on {self.url}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def server_environment(**overrides: str) -> dict[str, str]:
    """A worker's environment (the test database, directly, and the test Redis), and
    `overrides` (another REDIS_URL, say)."""
    return {**worker_environment(through_pgbouncer=False), **overrides}


@pytest.fixture(scope="package")
def server(django_db_setup) -> AsgiServer:
    running = AsgiServer(server_environment())
    yield running
    running.stop()


def chromium_binary() -> str:
    return _required("chromium", shutil.which("chromium"), "apt-get install chromium")


@pytest.fixture(scope="package")
def browser() -> Browser:
    """One Chromium for all the browser tests. Without a `chromium` binary: skip, or fail when
    CI=true (.ci/run installs it)."""
    binary = chromium_binary()
    saved = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=binary, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()
    playwright.stop()
    if saved is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE")
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = saved


@pytest.fixture
def new_page(browser, server):
    """`new_page(base_url=None)`: a page of its own (its own cookies) at 1280x800."""
    contexts = []

    def new_page(base_url: str | None = None) -> Page:
        context = browser.new_context(viewport=VIEWPORT, base_url=base_url or server.url)
        contexts.append(context)
        return context.new_page()

    yield new_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page) -> Page:
    return new_page()


def sign_in(page: Page, user, password: str = "pw") -> None:
    """Sign in through /login/ as a person does, and land on the dashboard."""
    page.goto("/login/")
    page.get_by_label("Username").fill(user.get_username())
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/dashboard/$"))


def signed_in(new_page, user, base_url: str | None = None) -> Page:
    """A new page signed in as `user`, on the dashboard with its socket open."""
    page = new_page(base_url)
    sign_in(page, user)
    expect(page.locator("#live-status")).to_have_text("Live")
    return page


def mark(page: Page) -> None:
    """Mark the page's window: a reload or a navigation wipes the mark (see not_reloaded)."""
    page.evaluate("window.notReloaded = true")


def not_reloaded(page: Page) -> bool:
    return page.evaluate("window.notReloaded === true")


@pytest.fixture
def legal(db) -> Group:
    return Group.objects.get_or_create(name="legal")[0]


@pytest.fixture
def make_pilot(make_user, legal):
    def make(*workflows):
        """A pilot in the legal group who may view `workflows`."""
        pilot = make_user("pilot")
        pilot.groups.add(legal)
        for workflow in workflows:
            assign_perm("view_workflow", pilot, workflow)
        return pilot

    return make


def screenshot(page: Page, name: str) -> None:
    """Save the page as docs/screenshots/<name>.png, only when CHAMELEON_SCREENSHOTS=1 (so
    test runs do not dirty the checkout)."""
    if os.environ.get("CHAMELEON_SCREENSHOTS") == "1":
        expect(page.locator("#live-status")).to_have_text("Live")  # as a pilot sees it
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / f"{name}.png")
