"""Without Debian's chromium the browser tests are skipped, except in CI, where they fail."""

import pytest

from tests.browser.conftest import chromium_binary


def test_a_missing_chromium_skips_the_browser_tests_and_fails_them_in_ci(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        chromium_binary()

    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="chromium is not installed"):
        chromium_binary()
