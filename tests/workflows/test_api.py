"""The workflows API (DESIGN §8): auth, workflows, versions, runs, events, cancel, metrics."""

import json
import re
import uuid

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from guardian.shortcuts import assign_perm
from rest_framework.test import APIClient
from rest_framework.throttling import UserRateThrottle
from rest_framework_simplejwt.tokens import RefreshToken

from workflows.models import (
    Run,
    RunEvent,
    RunStatus,
    StepRun,
    StepStatus,
    Workflow,
    WorkflowVersion,
)

CHAIN = """
slug: chain
name: Chain
inputs:
  name: {type: string, required: true}
  items: {type: array, default: [0, 1]}
steps:
  - id: greet
    tool: template.render
    with: {template: "hello {{ inputs.name }}"}
  - id: fan
    foreach: "inputs.items"
    tool: noop
    with: {value: "{{ item }}"}
  - id: done
    tool: noop
    with: {value: "{{ steps.greet.output.text }}"}
"""

SLEEPER = """
slug: sleeper
steps:
  - id: nap
    tool: sleep
    with: {seconds: 3600}
"""

JSON_SPEC = {
    "slug": "from-json",
    "inputs": {"n": {"type": "number", "required": True}},
    "steps": [{"id": "only", "tool": "noop", "with": {"value": "{{ inputs.n }}"}}],
}

INVALID = """
slug: broken
steps:
  - id: fetch
    tool: noop
  - id: summarize
    needs: [fetchh]
    tool: noop
  - id: fetch
    tool: noop
"""


def client_for(user=None) -> APIClient:
    """An API client sending a real JWT access token for `user` (none: anonymous)."""
    client = APIClient()
    if user is not None:
        token = RefreshToken.for_user(user).access_token
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code
    return body["error"]


@pytest.fixture
def api(operator):
    return client_for(operator)


@pytest.fixture
def chain(make_workflow):
    return make_workflow(CHAIN)


def start(client, slug="chain", **body):
    body.setdefault("inputs", {"name": "ada"})
    return client.post(f"/api/workflows/{slug}/runs/", body, format="json")


# Auth and error shape


@pytest.mark.django_db
def test_token_pair_refresh_rotates_and_the_old_refresh_token_is_rejected(make_user):
    make_user(username="ada")
    client = APIClient()

    pair = client.post("/api/auth/token/", {"username": "ada", "password": "pw"}, format="json")
    assert pair.status_code == 200
    tokens = pair.json()
    rotated = client.post("/api/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert rotated.status_code == 200
    assert rotated.json()["refresh"] != tokens["refresh"]

    replay = client.post("/api/auth/token/refresh/", {"refresh": tokens["refresh"]}, format="json")
    assert_error(replay, 401, "token_not_valid")
    again = client.post(
        "/api/auth/token/refresh/", {"refresh": rotated.json()["refresh"]}, format="json"
    )
    assert again.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {rotated.json()['access']}")
    assert client.get("/api/workflows/").status_code == 200


@pytest.mark.django_db
def test_wrong_password_is_401_in_the_error_shape(make_user):
    make_user(username="ada")

    response = APIClient().post(
        "/api/auth/token/", {"username": "ada", "password": "nope"}, format="json"
    )

    assert_error(response, 401, "no_active_account")


@pytest.mark.django_db
def test_no_token_is_401_in_the_error_shape():
    response = APIClient().get("/api/runs/")

    assert_error(response, 401, "not_authenticated")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
def test_bad_token_is_401_in_the_error_shape():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")

    assert_error(client.get("/api/workflows/"), 401, "token_not_valid")


@pytest.mark.django_db
def test_throttled_request_is_429_in_the_error_shape(monkeypatch, make_user):
    monkeypatch.setattr(UserRateThrottle, "THROTTLE_RATES", {"user": "2/min", "anon": "2/min"})
    user = make_user()
    # The throttle's history is in the shared cache, keyed by user id, which test databases reuse.
    cache.delete(UserRateThrottle.cache_format % {"scope": "user", "ident": user.pk})
    client = client_for(user)

    statuses = [client.get("/api/workflows/").status_code for _ in range(3)]

    assert statuses[:2] == [200, 200]
    third = client.get("/api/workflows/")
    error = assert_error(third, 429, "throttled")
    assert error["details"]["retry_after_s"] >= 1
    assert "Retry-After" in third.headers


# Workflows and versions


@pytest.mark.django_db
def test_create_workflow_from_a_yaml_string(api, operator):
    response = api.post("/api/workflows/", {"spec": CHAIN}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["slug"] == "chain"
    assert body["owner"] == operator.username
    assert body["current_version"]["number"] == 1
    assert body["current_version"]["spec"]["steps"][0]["id"] == "greet"
    assert Workflow.objects.get(slug="chain").current_version.source == CHAIN


@pytest.mark.django_db
def test_create_workflow_from_a_json_object(make_user):
    service = make_user("service")
    client = client_for(service)

    response = client.post("/api/workflows/", {"spec": JSON_SPEC}, format="json")

    assert response.status_code == 201, response.content
    assert response.json()["current_version"]["spec"]["inputs"]["n"]["type"] == "number"
    # the creator may see and run what they created, without any global permission
    assert client.get("/api/workflows/from-json/").status_code == 200
    assert start(client, "from-json", inputs={"n": 3}).status_code == 201


@pytest.mark.django_db
def test_invalid_spec_is_400_naming_every_path_and_saves_nothing(api):
    response = api.post("/api/workflows/", {"spec": INVALID}, format="json")

    error = assert_error(response, 400, "invalid_spec")
    assert "unknown step 'fetchh'" in error["details"]["steps[1].needs[0]"][0]
    assert "duplicate step id" in error["details"]["steps[2].id"][0]
    assert not Workflow.objects.exists()
    assert not WorkflowVersion.objects.exists()


@pytest.mark.django_db
def test_spec_of_the_wrong_type_or_missing_is_400(api):
    assert_error(api.post("/api/workflows/", {"spec": 42}, format="json"), 400, "invalid")
    error = assert_error(api.post("/api/workflows/", {}, format="json"), 400, "invalid")
    assert "spec" in error["details"]


@pytest.mark.django_db
def test_creating_an_existing_slug_is_409(api, chain):
    assert_error(api.post("/api/workflows/", {"spec": CHAIN}, format="json"), 409)


@pytest.mark.django_db
def test_viewer_without_add_permission_cannot_create_a_workflow(make_user):
    response = client_for(make_user("viewer")).post(
        "/api/workflows/", {"spec": CHAIN}, format="json"
    )

    assert_error(response, 403, "permission_denied")
    assert not Workflow.objects.exists()


@pytest.mark.django_db
def test_unknown_workflow_is_404(api):
    assert_error(api.get("/api/workflows/nope/"), 404, "not_found")
    assert_error(api.get("/api/workflows/nope/versions/"), 404, "not_found")
    assert_error(start(api, "nope"), 404, "not_found")


@pytest.mark.django_db
def test_workflow_invisible_to_another_user_is_404_and_absent_from_the_list(
    make_user, make_workflow
):
    owner, stranger = make_user("service"), make_user("service")
    make_workflow(CHAIN, owner=owner)
    client = client_for(stranger)

    assert client.get("/api/workflows/").json()["results"] == []
    assert_error(client.get("/api/workflows/chain/"), 404)
    assert_error(client.patch("/api/workflows/chain/", {"paused": True}, format="json"), 404)
    assert_error(client.post("/api/workflows/chain/versions/", {"spec": CHAIN}, format="json"), 404)
    assert_error(start(client), 404)
    listed = client_for(owner).get("/api/workflows/").json()["results"]
    assert [row["slug"] for row in listed] == ["chain"]


@pytest.mark.django_db
def test_a_new_version_becomes_current_and_an_identical_spec_changes_nothing(api, chain):
    changed = CHAIN.replace("hello", "hi")

    published = api.post("/api/workflows/chain/versions/", {"spec": changed}, format="json")
    same = api.post("/api/workflows/chain/versions/", {"spec": changed}, format="json")

    assert published.status_code == 201
    assert published.json()["number"] == 2
    assert same.status_code == 200
    assert same.json()["number"] == 2
    assert api.get("/api/workflows/chain/").json()["current_version"]["number"] == 2
    versions = api.get("/api/workflows/chain/versions/").json()["results"]
    assert [version["number"] for version in versions] == [2, 1]


@pytest.mark.django_db
def test_invalid_new_version_is_400_and_keeps_the_current_one(api, chain):
    response = api.post("/api/workflows/chain/versions/", {"spec": INVALID}, format="json")

    assert_error(response, 400, "invalid_spec")
    assert chain.versions.count() == 1


@pytest.mark.django_db
def test_a_version_that_would_call_back_into_its_workflow_is_400(api, chain, make_workflow):
    make_workflow("slug: middle\nsteps:\n  - id: call\n    workflow: chain\n")
    calls_itself = "slug: chain\nsteps:\n  - id: again\n    workflow: chain\n"
    through_middle = (
        "slug: chain\nsteps:\n  - id: a\n    tool: noop\n  - id: b\n    workflow: middle\n"
    )

    itself = api.post("/api/workflows/chain/versions/", {"spec": calls_itself}, format="json")
    around = api.post("/api/workflows/chain/versions/", {"spec": through_middle}, format="json")

    assert assert_error(itself, 400, "invalid_spec")["details"] == {
        "steps[0].workflow": ["a workflow cannot run itself"]
    }
    assert assert_error(around, 400, "invalid_spec")["details"] == {
        "steps[1].workflow": ["closes a cycle: chain -> middle -> chain"]
    }
    assert chain.versions.count() == 1


@pytest.mark.django_db
def test_view_only_user_cannot_publish_or_pause(make_user, chain):
    viewer = make_user("viewer")
    assign_perm("view_workflow", viewer, chain)
    client = client_for(viewer)

    assert client.get("/api/workflows/chain/").status_code == 200
    assert_error(client.patch("/api/workflows/chain/", {"paused": True}, format="json"), 403)
    assert_error(client.post("/api/workflows/chain/versions/", {"spec": CHAIN}, format="json"), 403)
    chain.refresh_from_db()
    assert chain.paused is False


@pytest.mark.django_db
def test_group_permission_grants_visibility(make_user, chain):
    legal = Group.objects.create(name="legal")
    member = make_user()
    member.groups.add(legal)
    assign_perm("view_workflow", legal, chain)

    listed = client_for(member).get("/api/workflows/").json()["results"]

    assert [row["slug"] for row in listed] == ["chain"]


# Runs


@pytest.mark.django_db
def test_paused_workflow_cannot_start_runs(api, chain):
    paused = api.patch("/api/workflows/chain/", {"paused": True}, format="json")
    assert paused.status_code == 200
    assert paused.json()["paused"] is True

    assert_error(start(api), 409, "workflow_paused")
    assert not Run.objects.exists()

    api.patch("/api/workflows/chain/", {"paused": False}, format="json")
    assert start(api).status_code == 201


@pytest.mark.django_db
def test_missing_and_ill_typed_inputs_are_400_naming_the_input(api, chain):
    missing = assert_error(start(api, inputs={}), 400)
    assert missing["details"] == {"inputs.name": "is required"}

    ill_typed = assert_error(start(api, inputs={"name": "ada", "items": "two"}), 400)
    assert ill_typed["details"] == {"inputs.items": "must be of type array"}

    not_an_object = assert_error(start(api, inputs=["ada"]), 400)
    assert "inputs" in not_an_object["details"]
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_start_run_then_it_completes_with_steps_progress_and_result(api, chain, drain, operator):
    response = start(api, ctx={"callback_url": "http://example.invalid/"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == RunStatus.RUNNING
    assert body["inputs"] == {"name": "ada", "items": [0, 1]}
    assert body["ctx"]["callback_url"] == "http://example.invalid/"
    assert body["started_by"] == operator.username
    assert body["progress"] == {"done": 0, "total": 3, "percent": 0}

    drain()
    detail = api.get(f"/api/runs/{body['id']}/").json()

    assert detail["status"] == RunStatus.COMPLETED
    assert detail["progress"] == {"done": 3, "total": 3, "percent": 100.0}
    assert detail["result"]["done"] == "hello ada"
    assert detail["cost_usd"] == 0
    assert [step["step_id"] for step in detail["steps"]] == ["greet", "fan", "done"]
    fan = detail["steps"][1]
    assert fan["output"] == [0, 1]
    assert [execution["iteration"] for execution in fan["executions"]] == [0, 1]
    assert all(execution["status"] == StepStatus.SUCCEEDED for execution in fan["executions"])


@pytest.mark.django_db
def test_same_idempotency_key_returns_the_same_run_with_200(api, chain):
    first = start(api, idempotency_key="order-42")
    second = start(api, idempotency_key="order-42")
    other = start(api, idempotency_key="order-43")

    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["id"] == first.json()["id"]
    assert other.status_code == 201
    assert Run.objects.count() == 2


@pytest.mark.django_db
def test_viewer_with_view_only_permission_gets_403_on_start_and_cancel(make_user, api, chain):
    viewer = make_user("viewer")
    assign_perm("view_workflow", viewer, chain)
    run_id = start(api).json()["id"]
    client = client_for(viewer)

    assert client.get(f"/api/runs/{run_id}/").status_code == 200
    assert_error(start(client), 403, "permission_denied")
    assert_error(client.post(f"/api/runs/{run_id}/cancel/"), 403, "permission_denied")
    assert Run.objects.count() == 1
    assert Run.objects.get().status == RunStatus.RUNNING

    assign_perm("run_workflow", viewer, chain)
    assert start(client).status_code == 201
    assert client.post(f"/api/runs/{run_id}/cancel/").status_code == 200


@pytest.mark.django_db
def test_runs_of_an_invisible_workflow_are_404_and_absent_from_the_list(make_user, api, chain):
    run_id = start(api).json()["id"]
    stranger = client_for(make_user("viewer"))

    assert stranger.get("/api/runs/").json()["results"] == []
    assert_error(stranger.get(f"/api/runs/{run_id}/"), 404)
    assert_error(stranger.get(f"/api/runs/{run_id}/events/"), 404)
    assert_error(stranger.post(f"/api/runs/{run_id}/cancel/"), 404)
    assert Run.objects.get().status == RunStatus.RUNNING
    assert_error(api.get(f"/api/runs/{uuid.uuid4()}/"), 404)


@pytest.mark.django_db
def test_cancel_a_finished_run_is_409(api, chain, drain):
    run_id = start(api).json()["id"]
    drain()

    error = assert_error(api.post(f"/api/runs/{run_id}/cancel/"), 409, "run_finished")

    assert "COMPLETED" in error["message"]
    assert Run.objects.get().status == RunStatus.COMPLETED


@pytest.mark.django_db
def test_cancel_a_running_run_cancels_it_and_its_steps(api, make_workflow, drain):
    make_workflow(SLEEPER)
    run_id = start(api, "sleeper", inputs={}).json()["id"]
    drain()  # the sleep step is now WAITING on its timer
    assert api.get(f"/api/runs/{run_id}/").json()["status"] == RunStatus.WAITING

    response = api.post(f"/api/runs/{run_id}/cancel/", {"reason": "changed my mind"}, format="json")

    assert response.status_code == 200, response.content
    assert response.json()["status"] == RunStatus.CANCELLED
    assert response.json()["error"] == "changed my mind"
    assert response.json()["steps"][0]["status"] == StepStatus.CANCELLED
    assert StepRun.objects.get(run_id=run_id).status == StepStatus.CANCELLED
    events = api.get(f"/api/runs/{run_id}/events/").json()["results"]
    status_changes = [event["payload"] for event in events if event["type"] == "run.status"]
    assert status_changes[-1] == {"from": "WAITING", "to": "CANCELLED", "reason": "changed my mind"}
    assert events[-1]["type"] == "step.cancelled"


@pytest.mark.django_db
def test_global_cancel_permission_cancels_without_run_permission(make_user, api, chain):
    run_id = start(api).json()["id"]
    canceller = make_user()
    canceller.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="workflows", codename__in=["cancel_run", "view_workflow"]
        )
    )

    response = client_for(canceller).post(f"/api/runs/{run_id}/cancel/")

    assert response.status_code == 200
    assert Run.objects.get().status == RunStatus.CANCELLED


# Events


@pytest.mark.django_db
def test_events_after_a_sequence_number(api, chain, drain):
    run_id = start(api).json()["id"]
    drain()
    total = RunEvent.objects.filter(run_id=run_id).count()

    everything = api.get(f"/api/runs/{run_id}/events/").json()
    assert [event["seq"] for event in everything["results"]] == list(range(1, total + 1))
    assert everything["results"][0]["type"] == "run.created"
    assert everything["last_seq"] == total
    assert everything["has_more"] is False
    assert everything["run_status"] == RunStatus.COMPLETED

    later = api.get(f"/api/runs/{run_id}/events/", {"after": 3, "limit": 4}).json()
    assert [event["seq"] for event in later["results"]] == [4, 5, 6, 7]
    assert later["last_seq"] == 7
    assert later["has_more"] is True

    nothing = api.get(f"/api/runs/{run_id}/events/", {"after": total}).json()
    assert nothing == {
        "run_status": RunStatus.COMPLETED,
        "results": [],
        "last_seq": total,
        "has_more": False,
    }
    assert_error(api.get(f"/api/runs/{run_id}/events/", {"after": -1}), 400)


# Run list


@pytest.mark.django_db
def test_run_list_is_newest_first_and_cursor_paginated(api, chain):
    ids = [start(api).json()["id"] for _ in range(5)]

    first = api.get("/api/runs/", {"page_size": 2}).json()
    second = api.get(first["next"]).json()
    third = api.get(second["next"]).json()

    pages = [first, second, third]
    seen = [run["id"] for page in pages for run in page["results"]]
    assert seen == list(reversed(ids))
    assert third["next"] is None
    assert "cursor=" in first["next"]
    back = api.get(second["previous"]).json()
    assert [run["id"] for run in back["results"]] == seen[:2]


@pytest.mark.django_db
def test_run_list_filters_by_workflow_and_status(api, chain, make_workflow, drain):
    make_workflow(SLEEPER)
    done = start(api).json()["id"]
    drain()
    sleeping = start(api, "sleeper", inputs={}).json()["id"]

    by_workflow = api.get("/api/runs/", {"workflow": "sleeper"}).json()["results"]
    completed = api.get("/api/runs/", {"status": "COMPLETED"}).json()["results"]

    assert [run["id"] for run in by_workflow] == [sleeping]
    assert [run["id"] for run in completed] == [done]
    assert completed[0]["workflow"] == "chain"
    assert completed[0]["version"] == 1
    assert_error(api.get("/api/runs/", {"status": "SLEEPY"}), 400)


def _count_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["operator", "object-permission"])
def test_run_list_queries_do_not_grow_with_the_number_of_runs(
    role, make_user, make_workflow, django_assert_max_num_queries
):
    owner = make_user("service")
    make_workflow(CHAIN, owner=owner)
    user = make_user("operator") if role == "operator" else owner
    client = client_for(user)
    start(client)
    few = _count_queries(client, "/api/runs/")

    for _ in range(10):
        start(client)

    assert _count_queries(client, "/api/runs/") == few
    with django_assert_max_num_queries(6):
        assert len(client.get("/api/runs/").json()["results"]) == 11


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["operator", "object-permission"])
def test_run_detail_queries_do_not_grow_with_steps_and_executions(
    role, make_user, make_workflow, drain, django_assert_max_num_queries
):
    owner = make_user("service")
    make_workflow(CHAIN, owner=owner)
    user = make_user("operator") if role == "operator" else owner
    client = client_for(user)
    small = start(client, inputs={"name": "a", "items": [1]}).json()["id"]
    large = start(client, inputs={"name": "a", "items": list(range(12))}).json()["id"]
    drain()

    small_count = _count_queries(client, f"/api/runs/{small}/")

    assert _count_queries(client, f"/api/runs/{large}/") == small_count
    with django_assert_max_num_queries(7):
        detail = client.get(f"/api/runs/{large}/").json()
    assert len(detail["steps"][1]["executions"]) == 12
    assert detail["step_counts"] == {"SUCCEEDED": 3}


@pytest.mark.django_db
def test_a_big_run_s_detail_shows_counts_and_its_first_steps_and_pages_the_rest(
    api, make_workflow, drain
):
    from workflows.selectors import STEPS_IN_DETAIL

    roots = "".join(f"  - {{id: s{n:02}, needs: [], tool: noop}}\n" for n in range(45))
    make_workflow(f"slug: wide\nsteps:\n{roots}")
    started = api.post("/api/workflows/wide/runs/", {"inputs": {}}, format="json").json()

    assert started["step_counts"] == {"RUNNING": 45}
    assert len(started["steps"]) == STEPS_IN_DETAIL
    drain()
    seen, url = [], f"/api/runs/{started['id']}/steps/?page_size=20"
    while url:
        page = api.get(url).json()
        seen += [step["step_id"] for step in page["results"]]
        url = page["next"]
    assert sorted(seen) == [f"s{n:02}" for n in range(45)]
    assert len(seen) == 45  # each once, across three pages
    assert api.get("/api/runs/00000000-0000-0000-0000-000000000000/steps/").status_code == 404


# Schema, docs, metrics


@pytest.mark.django_db
def test_openapi_schema_generates_without_warnings(tmp_path, api):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yml"))

    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    for path in (
        "/api/auth/token/",
        "/api/auth/token/refresh/",
        "/api/workflows/",
        "/api/workflows/{slug}/",
        "/api/workflows/{slug}/versions/",
        "/api/workflows/{slug}/runs/",
        "/api/runs/",
        "/api/runs/{run_id}/",
        "/api/runs/{run_id}/events/",
        "/api/runs/{run_id}/cancel/",
    ):
        assert path in paths


@pytest.mark.django_db
def test_schema_and_docs_need_a_signed_in_caller(client, operator):
    assert APIClient().get("/api/schema/").status_code == 401
    assert client.get("/api/docs/").status_code in (401, 403)

    client.force_login(operator)
    assert client.get("/api/docs/").status_code == 200


@pytest.mark.django_db
def test_swagger_ui_is_served_from_static_without_a_cdn(client, operator):
    from django.contrib.staticfiles import finders

    client.force_login(operator)
    page = client.get("/api/docs/").content.decode()

    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', page)
    assert assets, page
    for asset in assets:
        assert asset.startswith("/static/drf_spectacular_sidecar/"), asset
        assert finders.find(asset.removeprefix("/static/")), asset
    assert "cdn" not in page.lower()


def _runs_total(text: str, workflow: str, status: str) -> float:
    for line in text.splitlines():
        if line.startswith("chameleon_runs_total{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
            if labels == {"workflow": workflow, "status": status}:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.django_db
def test_metrics_are_shown_to_the_scraper_token_and_staff_only(client, make_user, settings):
    settings.METRICS_TOKEN = "s3cret"
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 404
    client.force_login(make_user("pilot"))  # signed in, not staff
    assert client.get("/metrics").status_code == 404

    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret").status_code == 200
    client.force_login(make_user(superuser=True))  # staff
    assert client.get("/metrics").status_code == 200


@pytest.mark.django_db
def test_without_a_token_no_bearer_header_opens_metrics(client, settings):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.django_db
def test_a_completed_run_is_counted_at_metrics(
    api, chain, drain, client, make_user, monkeypatch, django_capture_on_commit_callbacks
):
    # Step dispatch goes to the broker after commit; here `drain` executes the steps instead.
    monkeypatch.setattr("workflows.engine.dispatch.dispatch", lambda *args, **kwargs: None)
    client.force_login(make_user(superuser=True))
    before = _runs_total(client.get("/metrics").content.decode(), "chain", "COMPLETED")

    with django_capture_on_commit_callbacks(execute=True):
        run_id = start(api).json()["id"]
        drain()

    assert Run.objects.get(pk=run_id).status == RunStatus.COMPLETED
    scrape = client.get("/metrics")
    assert scrape.status_code == 200
    text = scrape.content.decode()
    # Other tests' runs (and the worker processes') are counted in the same registry.
    assert _runs_total(text, "chain", "COMPLETED") == before + 1
    assert "chameleon_step_seconds_bucket" in text
    assert "django_http_requests_total_by_method_total" in text
