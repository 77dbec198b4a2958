"""A dashboard page's live part asked for after the session ended answers 401 with HX-Redirect
to the sign-in page (which htmx follows with the whole page), not the sign-in page itself."""

import uuid

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

pytestmark = pytest.mark.django_db
SAMPLE = {"uuid": uuid.uuid4(), "slug": "llm-calls"}  # a value for each kind of URL argument


def dashboard_urls() -> list[str]:
    """Every dashboard route, with sample arguments."""
    urls = []

    def walk(patterns, namespace):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, entry.namespace or namespace)
            elif isinstance(entry, URLPattern) and namespace == "dashboard":
                kinds = entry.pattern.converters
                kwargs = {name: SAMPLE[type(c).__name__.removesuffix("Converter").lower()]
                          for name, c in kinds.items()}  # fmt: skip
                urls.append(reverse(f"dashboard:{entry.name}", kwargs=kwargs))

    walk(get_resolver().url_patterns, None)
    return urls


def test_every_dashboard_route_is_checked():
    assert len(dashboard_urls()) >= 6


@pytest.mark.parametrize("url", dashboard_urls())
def test_a_live_part_without_a_session_gets_401_and_hx_redirect_to_sign_in(url):
    page = "/dashboard/runs/?status=RUNNING"

    response = Client().get(
        f"{url}?part=table", HTTP_HX_REQUEST="true",
        HTTP_HX_CURRENT_URL=f"http://testserver{page}",
    )  # fmt: skip

    assert response.status_code == 401
    assert response["HX-Redirect"] == "/login/?next=%2Fdashboard%2Fruns%2F%3Fstatus%3DRUNNING"
    assert b"<html" not in response.content


@pytest.mark.parametrize("url", dashboard_urls())
def test_a_page_without_a_session_is_still_sent_to_sign_in(url):
    response = Client().get(url)

    assert response.status_code == 302 and response["Location"].startswith("/login/?next=")


def test_the_next_page_never_leaves_the_site():
    response = Client().get(
        "/dashboard/?part=table", HTTP_HX_REQUEST="true", HTTP_HX_CURRENT_URL="javascript:x"
    )

    assert response["HX-Redirect"] == "/login/?next=%2Fdashboard%2F"


def test_a_signed_in_htmx_request_gets_its_part(make_user):
    client = Client()
    client.force_login(make_user("pilot"))

    response = client.get("/dashboard/runs/?part=table", HTTP_HX_REQUEST="true")

    assert response.status_code == 200 and "HX-Redirect" not in response
