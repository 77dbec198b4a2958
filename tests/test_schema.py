"""The OpenAPI schema documents the statuses the API answers, the shared ones included."""

import pytest
from drf_spectacular.generators import SchemaGenerator

from tests.workflows.test_api import assert_error, client_for

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def operations() -> dict:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {
        (method.upper(), path): set(operation["responses"])
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    }


def test_every_operation_documents_throttling(operations):
    assert {op for op, codes in operations.items() if "429" not in codes} == set()


def test_every_signed_in_operation_documents_401(operations):
    assert {op for op, codes in operations.items() if "401" not in codes} == set()


def test_every_write_documents_unreadable_oversized_and_non_json_bodies(operations):
    writes = {op: codes for op, codes in operations.items() if op[0] in ("POST", "PUT", "PATCH")}

    assert {op for op, codes in writes.items() if not {"400", "413", "415"} <= codes} == set()


def test_paginated_lists_document_the_404_of_a_bad_cursor(operations, operator):
    assert "404" in operations[("GET", "/api/workflows/")]
    assert "404" in operations[("GET", "/api/runs/")]
    assert_error(client_for(operator).get("/api/workflows/?cursor=not-a-cursor"), 404)


def test_the_token_views_document_their_errors(operations):
    for path in ("/api/auth/token/", "/api/auth/token/refresh/", "/api/auth/logout/"):
        assert {"400", "401", "429"} <= operations[("POST", path)], path
    assert "204" in operations[("POST", "/api/auth/logout/")]


@pytest.mark.parametrize(
    ("path", "query"), [("/api/runs/", "status"), ("/api/interventions/", "group")]
)
def test_lists_refusing_a_filter_document_the_400(path, query, operations, operator):
    # What schemathesis found: a NUL in the queue's group filter was an undocumented 400.
    assert "400" in operations[("GET", path)]
    assert_error(client_for(operator).get(f"{path}?{query}=%00"), 400)
