"""http.* tools call the public internet and what an operator allows, never the server's own
neighbourhood (workflows.tools.outbound)."""

import pytest

from workflows.engine.api import Fail
from workflows.tools.builtins import HttpGetParams, HttpPostParams, http_get, http_post
from workflows.tools.registry import ToolContext

CONTEXT = ToolContext(idempotency_key="run:step:0", timeout_s=5)


def get(url):
    return http_get(HttpGetParams(url=url), CONTEXT)


@pytest.fixture
def nothing_allowed(settings):
    settings.HTTP_TOOLS_ALLOWED_HOSTS = []


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://127.0.0.1:8000/admin/", "127.0.0.1, a loopback address"),
        ("http://localhost:8000/readyz", "a loopback address"),
        ("http://2130706433:8000/api/auth/token/", "127.0.0.1, a loopback address"),  # decimal
        ("http://[::1]:8000/", "::1, a loopback address"),
        ("http://[::ffff:127.0.0.1]:5432/", "127.0.0.1, a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254, a link-local address"),
        ("http://10.1.2.3/", "10.1.2.3, a private address"),
        ("http://192.168.0.1/", "a private address"),
        ("http://0.0.0.0:6379/", "0.0.0.0, a"),
        ("http://[2002:a9fe:a9fe::1]/", "a link-local address"),  # 6to4 of 169.254.169.254
        ("file:///etc/passwd", "scheme 'file' is not allowed (http or https only)"),
        ("gopher://example.com/", "scheme 'gopher' is not allowed"),
    ],
)
def test_inside_addresses_and_other_schemes_are_refused_naming_the_rule(nothing_allowed, url, rule):
    with pytest.raises(Fail) as caught:
        get(url)
    assert rule in caught.value.message
    assert (caught.value.code, caught.value.retryable) == ("destination_refused", False)


def test_post_is_checked_the_same_way(nothing_allowed):
    with pytest.raises(Fail, match="a loopback address"):
        http_post(HttpPostParams(url="http://127.0.0.1:1/", json={"a": 1}), CONTEXT)


@pytest.mark.parametrize("allowed", [["127.0.0.1"], ["127.0.0.0/8"]])
def test_an_operator_may_allow_a_host_or_a_network(settings, http_server, allowed):
    base_url, recorder = http_server
    settings.HTTP_TOOLS_ALLOWED_HOSTS = allowed

    assert get(f"{base_url}/allowed")["status"] == 200
    assert recorder.count("/allowed") == 1


def test_an_allowed_name_is_not_an_allowed_neighbourhood(settings):
    settings.HTTP_TOOLS_ALLOWED_HOSTS = ["127.0.0.1"]
    with pytest.raises(Fail, match="10.0.0.1, a private address"):
        get("http://10.0.0.1/")


def test_a_failing_call_keeps_its_status_and_a_short_excerpt(settings, http_server):
    base_url, recorder = http_server
    recorder.status = 500
    recorder.body = "secret\n" * 1000
    with pytest.raises(Fail) as caught:
        get(f"{base_url}/fails")
    assert "HTTP 500" in caught.value.message
    assert len(caught.value.message) < len(base_url) + 250
    assert "\n" not in caught.value.message
