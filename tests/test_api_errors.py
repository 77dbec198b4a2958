"""Everything under /api/ answers in the API's JSON error shape, also before a view runs."""

import json

import pytest
from django.test import Client

from tests.workflows.test_api import client_for

pytestmark = pytest.mark.django_db


def error_of(response, status: int) -> dict:
    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    return json.loads(response.content)["error"]


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("path", ["/api/nothing-here/", "/api/runs/not-a-uuid/"])
def test_unknown_api_paths_and_ids_their_converter_refuses_are_a_json_404(
    operator, settings, path, debug
):
    settings.DEBUG = debug  # the embedded default: Django's own pages would be HTML
    assert error_of(client_for(operator).get(path), 404)["code"] == "not_found"


def test_outside_the_api_a_missing_page_is_still_a_page():
    response = Client().get("/nothing-here/")
    assert response.status_code == 404
    assert not response["Content-Type"].startswith("application/json")


def test_a_body_over_the_limit_is_a_json_413_before_it_is_read(operator, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = json.dumps({"spec": "x" * 2000})

    response = client_for(operator).post("/api/workflows/", body, content_type="application/json")

    error = error_of(response, 413)
    assert (error["code"], error["details"]) == ("too_large", {"limit_bytes": 1000})


def test_a_form_encoded_body_is_a_json_415_not_a_request_with_defaults(operator, make_workflow):
    make_workflow("slug: formless\nsteps:\n  - id: a\n    tool: noop\n")

    response = client_for(operator).post(
        "/api/workflows/formless/runs/", {"inputs": "{}"}, format="multipart"
    )

    assert error_of(response, 415)["code"] == "unsupported_media_type"
