"""The authorization matrix: every role × every API operation (as drf-spectacular's schema lists
them), dashboard page and live feed × own / shared / foreign / missing object, each cell checked
against tests/security/authorization_table.py. Acts are made in a savepoint rolled back after
each cell, so every cell sees the same objects; the figures go to the run's summary."""

import contextlib
import json
import re
import uuid
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import pytest
from django.contrib.auth.models import Group
from django.db import transaction
from django.test import Client
from django.urls import get_resolver, reverse
from drf_spectacular.generators import SchemaGenerator
from guardian.shortcuts import assign_perm
from rest_framework_simplejwt.tokens import RefreshToken
from websockets.exceptions import InvalidStatus

from accounts.models import AuditEntry
from agents.services import agent_create, provider_save
from guardians.services import guardian_create
from interventions.models import Intervention
from interventions.services import intervention_claim
from tests.conftest import drain
from tests.live import sentinel_send, session_cookie, ws_open, ws_until_sentinel
from tests.security import authorization_table as table
from tests.workflows.test_api import client_for
from workflows.engine import api
from workflows.engine.registry import run_panels
from workflows.models import Workflow
from workflows.services import workflow_create

ASKING = "slug: {slug}\nsteps:\n  - id: ask\n    human: {{type: approval, group: pilot}}\n"
CONFIGS = {"providers": "sim", "agents": "helper", "guardians": "gate"}
LISTS = {
    table.LIST_OF_WORKFLOW: table.WORKFLOW,
    table.LIST_OF_RUN: table.RUN,
    table.LIST_OF_INTERVENTION: table.INTERVENTION,
}


@dataclass
class Owned:
    workflow: Workflow
    run: object
    intervention: Intervention

    def of(self, kind):
        return {
            table.WORKFLOW: self.workflow,
            table.RUN: self.run,
            table.INTERVENTION: self.intervention,
        }[kind]


class World:
    """One user per role, a workflow of each signed-in role's own, one an operator shared with
    all of them (view only) and one shared with nobody; each with a run waiting on an approval
    for the pilot group; one provider, agent and guardian."""

    def __init__(self, make_user):
        self.users = {role: make_user(role, username=role) for role in table.ROLES[:5]}
        self.users["admin"].is_superuser = self.users["admin"].is_staff = True
        self.users["operator"].is_staff = True
        for user in self.users.values():
            user.save(update_fields=["is_superuser", "is_staff"])
        self.users["nobody"] = make_user(username="nobody")
        self.users["anonymous"] = None
        operator = self.users["operator"]
        self.owned = {role: _asking(f"own-{role}", user) for role, user in self.users.items()
                      if user is not None}  # fmt: skip
        self.shared, self.foreign = _asking("shared", operator), _asking("foreign", operator)
        for user in self.users.values():
            if user is not None:
                assign_perm("workflows.view_workflow", user, self.shared.workflow)
        provider_save(source={"slug": "sim", "kind": "simulated"}, by=operator)
        chain = [{"provider": "sim", "model": "m"}]
        agent_create(source={"slug": "helper", "prompt": "hi", "chain": chain}, by=operator)
        guardian_create(source={"slug": "gate", "kind": "PASS_THRU"}, by=operator)
        drain()
        for owned in [*self.owned.values(), self.shared, self.foreign]:
            owned.intervention = Intervention.objects.get(run_id=owned.run.pk)

    def objects(self, kind: str, role: str, template: str) -> dict[str, object]:
        """Object column → the object (None: missing) for `role` in a row of `kind`."""
        kind = LISTS.get(kind, kind)
        if kind in (table.WORKFLOW, table.RUN, table.INTERVENTION):
            own = self.owned.get(role, self.foreign)  # anonymous owns nothing
            return {"own": own.of(kind), "shared": self.shared.of(kind),
                    "foreign": self.foreign.of(kind), "missing": None}  # fmt: skip
        if kind in (table.CONFIG, table.LIST_OF_CONFIG):
            return {"existing": Config(CONFIGS[template.split("/")[2]]), "missing": None}
        return {"-": None}


@dataclass(frozen=True)
class Config:
    slug: str


def _asking(slug, user) -> Owned:
    workflow = workflow_create(source=ASKING.format(slug=slug), created_by=user)
    run, _ = api.run_start(workflow=workflow, inputs={}, started_by=user)
    return Owned(workflow, run, None)


def _path(template: str, obj) -> str:
    """The path with the object's key in it (an unknown one for a missing object)."""
    if "{slug}" in template:
        return template.replace("{slug}", getattr(obj, "slug", "missing"))
    key = str(obj.pk) if obj is not None else str(uuid.uuid4())
    return template.replace("{run_id}", key).replace("{id}", key)


def _body(row: table.Row, obj, user):
    if row.body == "credentials":
        username = user.username if user else "anonymous"
        return {"username": username, "password": "pw" if user else "wrong"}
    if row.body == "refresh token":
        return {"refresh": str(RefreshToken.for_user(user)) if user else "not-a-token"}
    slug = getattr(obj, "slug", "missing")
    return json.loads(json.dumps(row.body or {}).replace("{slug}", slug))


def _meets(expected, response, key=None) -> tuple[bool, str]:
    """Whether `response` is the `expected` answer, and what it was."""
    status = response.status_code
    if expected in (table.LISTED, table.HIDDEN) and status == 200:
        if response["Content-Type"].startswith("application/json"):
            listed = key in {row.get("slug") or row.get("id") for row in response.json()["results"]}
        else:
            listed = key in response.content.decode()
        got = table.LISTED if listed else table.HIDDEN
    elif status in (301, 302):
        location = response["Location"]
        redirected = isinstance(expected, table.Redirect) and location.startswith(expected.to)
        return redirected, f"302 → {location}"
    else:
        got = status
    return got == expected, str(got)


def _key(obj) -> str:
    """What names the object in a list: its slug, or its id."""
    return getattr(obj, "slug", None) or str(obj.pk)


@pytest.fixture
def world(db, make_user):
    return World(make_user)


def _api_cells(world: World, operation: str, row: table.Row, role: str):
    """(column, expected, met, got) for each cell of an API row, for `role`."""
    method, template = operation.split(" ")
    user, objects = world.users[role], world.objects(row.kind, role, template)
    client = client_for(user)
    columns = table.OBJECTS[row.kind]
    if row.kind in LISTS or row.kind == table.LIST_OF_CONFIG:
        response = client.get(template)
        for column, expected in zip(columns, row.cells[role], strict=True):
            yield column, expected, *_meets(expected, response, _key(objects[column]))
        return
    for column, expected in zip(columns, row.cells[role], strict=True):
        obj = objects[column]
        if method == "GET":
            yield column, expected, *_meets(expected, client.get(_path(template, obj)))
            continue
        with transaction.atomic():
            if row.given == table.CLAIMED and user is not None and obj is not None:
                intervention_claim(intervention_id=obj.pk, user=user)
            response = client.generic(
                method, _path(template, obj), json.dumps(_body(row, obj, user)),
                content_type="application/json",
            )  # fmt: skip
            transaction.set_rollback(True)
        yield column, expected, *_meets(expected, response)


def test_every_operation_of_the_schema_has_a_row_and_every_row_an_operation():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = {f"{method.upper()} {path}" for path, item in schema["paths"].items()
                  for method in item}  # fmt: skip
    assert sorted(operations - set(table.API)) == [], "operations without a row in API"
    assert sorted(set(table.API) - operations) == [], "rows for operations the schema lacks"


def test_every_role_gets_what_the_table_says_from_every_api_operation(world, security_figure):
    cells, wrong = 0, []
    for operation, row in table.API.items():
        if row.live:
            continue  # tested below, on a real ASGI server
        for role in table.ROLES:
            for column, expected, met, got in _api_cells(world, operation, row, role):
                cells += 1
                if not met:
                    wrong.append(f"{operation} as {role}, {column}: expected {expected}, got {got}")
    security_figure(f"authorization matrix, API: {cells} cells, {len(wrong)} wrong")
    assert wrong == [], "\n".join(wrong)


def _page_routes() -> set[str]:
    """The dashboard's routes, as the table writes them (`/dashboard/runs/{run_id}/`)."""
    namespace = next(p for p in get_resolver().url_patterns
                     if getattr(p, "namespace", None) == "dashboard")  # fmt: skip

    def walk(resolver, prefix):
        for pattern in resolver.url_patterns:
            route = prefix + str(pattern.pattern)
            yield from walk(pattern, route) if hasattr(pattern, "url_patterns") else [route]

    routes = walk(namespace, "/" + str(namespace.pattern))
    return {re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", r).replace("{intervention_id}", "{id}")
            for r in routes}  # fmt: skip


def _page_paths() -> set[str]:
    """The paths of the table's dashboard rows, without their query."""
    return {operation.split(" ")[1].split("?")[0] for operation in table.PAGES}


def test_every_dashboard_route_has_a_row():
    def rowed(route: str) -> bool:
        pattern = re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(route))  # {name}: any one segment
        return any(re.fullmatch(pattern, path) for path in _page_paths())

    assert sorted(r for r in _page_routes() if not rowed(r)) == [], "routes without a row in PAGES"


def test_every_run_panel_has_a_row():
    rowed = {path for path in _page_paths() if "/panels/" in path}
    panels = {f"/dashboard/runs/{{run_id}}/panels/{panel.name}/" for panel in run_panels()}
    assert sorted(panels - rowed) == [], "run panels without a row in PAGES"


def test_every_role_gets_what_the_table_says_from_every_dashboard_page(world, security_figure):
    cells, wrong = 0, []
    for operation, row in table.PAGES.items():
        method, template = operation.split(" ")[:2]
        for role in table.ROLES:
            user, client = world.users[role], Client()
            if user is not None:
                client.force_login(user)
            objects = world.objects(row.kind, role, template)
            for column, expected in zip(table.OBJECTS[row.kind], row.cells[role], strict=True):
                cells += 1
                obj, path = objects[column], _path(template, objects[column])
                with transaction.atomic():
                    if row.given == table.CLAIMED and user is not None and obj is not None:
                        intervention_claim(intervention_id=obj.pk, user=user)
                    response = client.generic(method, path, urlencode(row.body or {}),
                                              "application/x-www-form-urlencoded")  # fmt: skip
                    transaction.set_rollback(True)
                met, got = _meets(expected, response, obj and _key(obj))
                if not met:
                    wrong.append(f"{operation} as {role}, {column}: expected {expected}, got {got}")
    security_figure(f"authorization matrix, dashboard pages: {cells} cells, {len(wrong)} wrong")
    assert wrong == [], "\n".join(wrong)


@pytest.fixture
def live_world(transactional_db, make_user):
    """The world, committed for the server's threads, with its runs ended: a stream of a run
    that has ended closes after its stored events, so no stream outlives its cell."""
    world = World(make_user)
    for owned in [*world.owned.values(), world.shared, world.foreign]:
        api.run_cancel(run_id=owned.run.pk, by=world.users["operator"])
    return world


def _feed_answer(address, path, user) -> str:
    try:
        with ws_open(address, path, cookie=session_cookie(user) if user else None):
            return table.OPEN
    except InvalidStatus as refused:
        return refused.response.status_code


def _stream_answer(address, path, user) -> int:
    headers = {"Authorization": f"Bearer {RefreshToken.for_user(user).access_token}"} if user \
        else {}  # fmt: skip
    with httpx.stream("GET", f"http://{address}{path}", headers=headers, timeout=10) as response:
        return response.status_code


def _feed_sightings(address, world: World) -> dict[str, dict[str, str]]:
    """Signed-in role → object column → whether a run started on that column's workflow while
    the role's /ws/feed/ was open reached it (listed) or not (hidden)."""
    roles = [role for role in table.ROLES if world.users[role] is not None]
    with contextlib.ExitStack() as opened:
        feeds = {role: opened.enter_context(ws_open(address, "/ws/feed/",
                                                  cookie=session_cookie(world.users[role])))
                 for role in roles}  # fmt: skip
        started = {}
        for owned in [*world.owned.values(), world.shared, world.foreign]:
            run, _ = api.run_start(workflow=owned.workflow, inputs={},
                                   started_by=world.users["operator"])  # fmt: skip
            started[owned.workflow.pk] = str(run.pk)
        # After every run's first events, from the same publisher: what is not before it is
        # hidden, not late.
        sentinel_send(*(world.users[role] for role in roles))
        seen = {role: {event["run"] for event in ws_until_sentinel(feed)}
                for role, feed in feeds.items()}  # fmt: skip
    return {
        role: {
            column: table.LISTED if started[workflow.pk] in seen[role] else table.HIDDEN
            for column, workflow in world.objects(table.WORKFLOW, role, "").items()
            if workflow is not None
        }
        for role in roles
    }


def test_every_role_gets_what_the_table_says_from_every_live_feed(
    live_world,
    asgi_server,
    security_figure,
):
    live = {**table.FEEDS, **{op: row for op, row in table.API.items() if row.live}}
    cells, wrong = 0, []
    for operation, row in live.items():
        kind, template = operation.split(" ")
        answer = _feed_answer if kind == "WS" else _stream_answer
        sightings = _feed_sightings(asgi_server, live_world) if row.kind in LISTS else {}
        for role in table.ROLES:
            user, objects = live_world.users[role], live_world.objects(row.kind, role, template)
            for column, expected in zip(table.OBJECTS[row.kind], row.cells[role], strict=True):
                cells += 1
                if role in sightings:
                    got = sightings[role][column]
                else:
                    got = answer(asgi_server, _path(template, objects[column]), user)
                if got != expected:
                    wrong.append(f"{operation} as {role}, {column}: expected {expected}, got {got}")
    security_figure(f"authorization matrix, live feeds: {cells} cells, {len(wrong)} wrong")
    assert wrong == [], "\n".join(wrong)


def test_every_grant_and_revoke_an_operator_makes_in_the_admin_is_audited(world):
    operator, pilot = world.users["operator"], world.users["pilot"]
    workflow, viewers = world.foreign.workflow, Group.objects.get(name="viewer")
    client = Client()
    client.force_login(operator)
    before = set(AuditEntry.objects.values_list("pk", flat=True))
    user_page = reverse("admin:workflows_workflow_permissions_manage_user",
                        args=[workflow.pk, pilot.pk])  # fmt: skip
    group_page = reverse("admin:workflows_workflow_permissions_manage_group",
                         args=[workflow.pk, viewers.pk])  # fmt: skip

    client.post(user_page, {"permissions": ["view_workflow", "run_workflow"]})
    client.post(group_page, {"permissions": ["view_workflow"]})
    client.post(user_page, {"permissions": ["run_workflow"]})  # view taken back

    entries = AuditEntry.objects.exclude(pk__in=before).filter(action__startswith="permission.")
    changes = [(e, e.after or e.before) for e in entries]
    acts = sorted((e.action, e.actor_id, e.object_id, change["permission"], change["to"])
                  for e, change in changes)  # fmt: skip
    on = (operator.pk, str(workflow.pk))
    assert acts == sorted([("permission.grant", *on, "view_workflow", "pilot"),
                           ("permission.grant", *on, "run_workflow", "pilot"),
                           ("permission.grant", *on, "view_workflow", "viewer"),
                           ("permission.revoke", *on, "view_workflow", "pilot")])  # fmt: skip
    assert client_for(world.users["viewer"]).get(f"/api/workflows/{workflow.slug}/").status_code \
        == 200  # fmt: skip
    assert client_for(pilot).get(f"/api/workflows/{workflow.slug}/").status_code == 404
