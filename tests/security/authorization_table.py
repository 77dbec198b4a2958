"""Who reaches what: the one table the authorization matrix checks (tests/security/
test_authorization_matrix.py), for the API (every operation of the OpenAPI schema), the
dashboard's pages and its live feeds.

A row names the surface's path, the kind of object it acts on (which fixes the object columns)
and, for each role, the expected answer per object column:

- own: the role's user created it (the creator holds view, run and change on it); for
  interventions and runs, those of a workflow the user created.
- shared: an operator's, on which the user was granted view_workflow only.
- foreign: an operator's, with no grant to the user.
- missing: no such object.
- existing / missing: providers, agents and guardians are global configuration (DESIGN §4, §5):
  no owner, nothing shared; who may view the model sees them all.
- listed / hidden (lists): whether the object is among the rows the list returns (status 200),
  or, on a page, whether its id is anywhere in it.

Operators, like admins, are global by design (DESIGN §7): they hold the model-wide view, run,
change and cancel permissions, so shared and foreign are alike to them, and every grant they
make is audited (tests/security/test_authorization_matrix.py checks it). Nobody learns of what
they may not view: 404, never 403, for an object the caller cannot see; 403 only where the
caller sees the object but may not act on it, or creates where the role may not.
"""

from dataclasses import dataclass

ROLES = ("admin", "operator", "pilot", "viewer", "service", "nobody", "anonymous")
GLOBAL = ("admin", "operator")
PER_OBJECT = ("pilot", "viewer", "service", "nobody")  # nobody: a user in no group

WORKFLOW, RUN, INTERVENTION = "workflow", "run", "intervention"
CONFIG = "config"  # a provider, an agent or a guardian
LIST_OF_WORKFLOW, LIST_OF_RUN, LIST_OF_INTERVENTION = "workflows", "runs", "interventions"
LIST_OF_CONFIG = "configs"
NONE = "none"  # no object: a create, the audit log, a page or a feed of its own
OBJECTS = {
    WORKFLOW: ("own", "shared", "foreign", "missing"),
    RUN: ("own", "shared", "foreign", "missing"),
    INTERVENTION: ("own", "shared", "foreign", "missing"),
    CONFIG: ("existing", "missing"),
    LIST_OF_WORKFLOW: ("own", "shared", "foreign"),
    LIST_OF_RUN: ("own", "shared", "foreign"),
    LIST_OF_INTERVENTION: ("own", "shared", "foreign"),
    LIST_OF_CONFIG: ("existing",),
    NONE: ("-",),
}

LISTED, HIDDEN = "listed", "hidden"
OPEN = "open"  # a WebSocket accepted; refusals are 403 handshakes (the only status one can have)


@dataclass(frozen=True)
class Redirect:
    to: str  # the start of the Location header

    def __str__(self):
        return f"302 → {self.to}"


TO_LOGIN, TO_ADMIN_LOGIN, TO_DASHBOARD = Redirect("/login/?next="), Redirect("/admin/login/"), \
    Redirect("/dashboard/")  # fmt: skip


def cells(global_, per_object, *, anonymous=None, **roles) -> dict[str, tuple]:
    """Role → expected answers, one per object column: admins and operators alike, the other
    signed-in roles alike, unless a role is named; anonymous callers get 401 unless told."""
    table = {role: global_ for role in GLOBAL} | {role: per_object for role in PER_OBJECT}
    table["anonymous"] = anonymous or (401,) * len(global_)
    return table | roles


@dataclass(frozen=True)
class Row:
    kind: str
    cells: dict[str, tuple]
    body: dict | str | None = None  # "{slug}" in it stands for the object's slug
    given: str | None = None  # CLAIMED: the caller claimed the intervention just before
    live: bool = False  # answered on a real ASGI server (a stream, a WebSocket)


CLAIMED = "claimed by the caller"

ALL, VISIBLE = (200, 200, 200, 404), (200, 200, 404, 404)
READ = cells(ALL, VISIBLE)


def owner_acts(ok: int) -> dict[str, tuple]:
    """Acts that need run or change on the workflow: its creator's grants, or a global one."""
    return cells((ok, ok, ok, 404), (ok, 403, 404, 404))


# Claim, release, resolve, delegate: who sees it and is its assignee, in its candidate group
# (pilot, in these fixtures) or an operator/admin.
ACT = cells(ALL, (403, 403, 404, 404), pilot=VISIBLE)
LISTS = cells((LISTED,) * 3, (LISTED, LISTED, HIDDEN))
CONFIG_READ = cells((200, 404), (404, 404))
CONFIG_LIST = cells((LISTED,), (HIDDEN,))
CONFIG_CREATE = cells((201,), (403,))
AUTH = cells((200,), (200,), anonymous=(401,))  # the caller's own credentials; anonymous: wrong

FLOW = "slug: {slug}\nname: next\nsteps: [{id: a, tool: noop}]\n"
PROVIDER = {"slug": "{slug}", "kind": "simulated"}
AGENT = {"slug": "{slug}", "prompt": "hello", "chain": [{"provider": "sim", "model": "m"}]}
GUARDIAN = {"slug": "{slug}", "kind": "PASS_THRU", "name": "next"}

API = {
    "POST /api/auth/token/": Row(NONE, AUTH, body="credentials"),
    "POST /api/auth/token/refresh/": Row(NONE, AUTH, body="refresh token"),
    "POST /api/auth/logout/": Row(NONE, cells((204,), (204,), anonymous=(401,)),
                                  body="refresh token"),
    "GET /api/workflows/": Row(LIST_OF_WORKFLOW, LISTS),
    "POST /api/workflows/": Row(NONE, cells((201,), (403,), service=(201,)),
                                body={"spec": FLOW.replace("{slug}", "created")}),
    "GET /api/workflows/{slug}/": Row(WORKFLOW, READ),
    "PATCH /api/workflows/{slug}/": Row(WORKFLOW, owner_acts(200), body={"paused": True}),
    "GET /api/workflows/{slug}/versions/": Row(WORKFLOW, READ),
    "POST /api/workflows/{slug}/versions/": Row(WORKFLOW, owner_acts(201), body={"spec": FLOW}),
    "POST /api/workflows/{slug}/runs/": Row(WORKFLOW, owner_acts(201), body={"inputs": {}}),
    "GET /api/runs/": Row(LIST_OF_RUN, LISTS),
    "GET /api/runs/{run_id}/": Row(RUN, READ),
    "GET /api/runs/{run_id}/steps/": Row(RUN, READ),
    "GET /api/runs/{run_id}/events/": Row(RUN, READ),
    "GET /api/runs/{run_id}/events/stream/": Row(RUN, READ, live=True),
    "GET /api/runs/{run_id}/llm-calls/": Row(RUN, READ),
    "GET /api/runs/{run_id}/decisions/": Row(RUN, READ),
    "POST /api/runs/{run_id}/cancel/": Row(RUN, owner_acts(200), body={}),
    # These runs wait on a person, so whoever may retry one hears 409 (only a failed run is
    # retried): the state is checked after the permission.
    "POST /api/runs/{run_id}/retry/": Row(RUN, owner_acts(409), body={}),
    "GET /api/interventions/": Row(LIST_OF_INTERVENTION, LISTS),
    "GET /api/interventions/{id}/": Row(INTERVENTION, READ),
    "POST /api/interventions/{id}/claim/": Row(INTERVENTION, ACT),
    "POST /api/interventions/{id}/release/": Row(INTERVENTION, ACT, given=CLAIMED),
    "POST /api/interventions/{id}/resolve/": Row(INTERVENTION, ACT, body={"decision": "approve"}),
    "POST /api/interventions/{id}/delegate/": Row(INTERVENTION, ACT, body={"to": "operator"}),
    "POST /api/interventions/{id}/comment/": Row(INTERVENTION, READ, body={"text": "seen"}),
    "GET /api/providers/": Row(LIST_OF_CONFIG, CONFIG_LIST),
    "POST /api/providers/": Row(NONE, CONFIG_CREATE, body={"spec": {**PROVIDER, "slug": "new"}}),
    "GET /api/providers/{slug}/": Row(CONFIG, CONFIG_READ),
    "PUT /api/providers/{slug}/": Row(CONFIG, CONFIG_READ, body={"spec": PROVIDER}),
    "POST /api/providers/{slug}/reset/": Row(CONFIG, CONFIG_READ),
    "GET /api/agents/": Row(LIST_OF_CONFIG, CONFIG_LIST),
    "POST /api/agents/": Row(NONE, CONFIG_CREATE, body={"spec": {**AGENT, "slug": "new"}}),
    "GET /api/agents/{slug}/": Row(CONFIG, CONFIG_READ),
    "PATCH /api/agents/{slug}/": Row(CONFIG, CONFIG_READ, body={"enabled": False}),
    "GET /api/agents/{slug}/versions/": Row(CONFIG, CONFIG_READ),
    "POST /api/agents/{slug}/versions/": Row(CONFIG, cells((201, 404), (404, 404)),
                                             body={"spec": AGENT}),
    "GET /api/guardians/": Row(LIST_OF_CONFIG, CONFIG_LIST),
    "POST /api/guardians/": Row(NONE, CONFIG_CREATE, body={"spec": {**GUARDIAN, "slug": "new"}}),
    "GET /api/guardians/{slug}/": Row(CONFIG, CONFIG_READ),
    "GET /api/guardians/{slug}/versions/": Row(CONFIG, CONFIG_READ),
    "POST /api/guardians/{slug}/versions/": Row(CONFIG, cells((201, 404), (404, 404)),
                                                body={"spec": GUARDIAN}),
    "POST /api/guardians/{slug}/evaluate/": Row(CONFIG, CONFIG_READ, body={"payload": {}}),
    "GET /api/audit/": Row(NONE, cells((200,), (404,), operator=(404,))),
}  # fmt: skip

SIGNED_IN_PAGE = cells((200,), (200,), anonymous=(TO_LOGIN,))
SEEN_PAGE = cells(ALL, VISIBLE, anonymous=(TO_LOGIN,) * 4)
DONE = Redirect("/dashboard/interventions/")  # an act done: back to the intervention's page
PAGE_ACT = cells((DONE, DONE, DONE, 404), (403, 403, 404, 404), pilot=(DONE, DONE, 404, 404),
                 anonymous=(TO_LOGIN,) * 4)  # fmt: skip
PAGE_COMMENT = cells((DONE, DONE, DONE, 404), (DONE, DONE, 404, 404), anonymous=(TO_LOGIN,) * 4)
APPROVE, DELEGATE = {"act": "resolve", "decision": "approve"}, {"act": "delegate", "to": "operator"}
COMMENT = {"act": "comment", "text": "seen"}
# The queue lists what the user may act on: for pilots, their group's; for operators, all.
QUEUE = cells((LISTED,) * 3, (HIDDEN,) * 3, pilot=(LISTED, LISTED, HIDDEN),
              anonymous=(TO_LOGIN,) * 3)  # fmt: skip
RUNS_LIST = cells((LISTED,) * 3, (LISTED, LISTED, HIDDEN), anonymous=(TO_LOGIN,) * 3)
# Dashboard rows name a path (with the `?part=` a page's live element reloads, where it has
# one) and, for a page's acts, the act after it: "POST <path> <act>".
PAGES = {
    "GET /": Row(NONE, cells((TO_DASHBOARD,), (TO_DASHBOARD,), anonymous=(Redirect("/login/"),))),
    "GET /login/": Row(NONE, cells((TO_DASHBOARD,), (TO_DASHBOARD,), anonymous=(200,))),
    "GET /dashboard/": Row(LIST_OF_INTERVENTION, QUEUE),
    "GET /dashboard/?part=table": Row(LIST_OF_INTERVENTION, QUEUE),
    "GET /dashboard/runs/": Row(LIST_OF_RUN, RUNS_LIST),
    "GET /dashboard/runs/?part=table": Row(LIST_OF_RUN, RUNS_LIST),
    "GET /dashboard/runs/{run_id}/": Row(RUN, SEEN_PAGE),
    "GET /dashboard/runs/{run_id}/?part=summary": Row(RUN, SEEN_PAGE),
    "GET /dashboard/runs/{run_id}/?part=steps": Row(RUN, SEEN_PAGE),
    "GET /dashboard/runs/{run_id}/?part=links": Row(RUN, SEEN_PAGE),
    "GET /dashboard/runs/{run_id}/?part=events": Row(RUN, SEEN_PAGE),
    # Every registered run panel (test_authorization_matrix.py checks there is a row for each).
    "GET /dashboard/runs/{run_id}/panels/llm-calls/": Row(RUN, SEEN_PAGE),
    "GET /dashboard/runs/{run_id}/panels/guardian-decisions/": Row(RUN, SEEN_PAGE),
    "GET /dashboard/interventions/{id}/": Row(INTERVENTION, SEEN_PAGE),
    "GET /dashboard/interventions/{id}/?part=body": Row(INTERVENTION, SEEN_PAGE),
    "GET /dashboard/interventions/{id}/?part=run": Row(INTERVENTION, SEEN_PAGE),
    "POST /dashboard/interventions/{id}/ claim": Row(INTERVENTION, PAGE_ACT, body={"act": "claim"}),
    "POST /dashboard/interventions/{id}/ release": Row(INTERVENTION, PAGE_ACT, given=CLAIMED,
                                                       body={"act": "release"}),
    "POST /dashboard/interventions/{id}/ resolve": Row(INTERVENTION, PAGE_ACT, body=APPROVE),
    "POST /dashboard/interventions/{id}/ delegate": Row(INTERVENTION, PAGE_ACT, body=DELEGATE),
    "POST /dashboard/interventions/{id}/ comment": Row(INTERVENTION, PAGE_COMMENT, body=COMMENT),
    "GET /dashboard/overview/": Row(NONE, SIGNED_IN_PAGE),
    "GET /dashboard/overview/?part=figures": Row(NONE, SIGNED_IN_PAGE),
    # The admin is for staff (admins and operators); anyone else is sent to its sign-in page.
    "GET /admin/": Row(NONE, cells((200,), (TO_ADMIN_LOGIN,), anonymous=(TO_ADMIN_LOGIN,))),
}  # fmt: skip

FEEDS = {
    "WS /ws/runs/{run_id}/": Row(RUN, cells((OPEN, OPEN, OPEN, 403), (OPEN, OPEN, 403, 403),
                                            anonymous=(403,) * 4), live=True),
    # The feed: whether a run started while it is open reaches it.
    "WS /ws/feed/": Row(LIST_OF_RUN, cells((LISTED,) * 3, (LISTED, LISTED, HIDDEN),
                                           anonymous=(403,) * 3), live=True),
}  # fmt: skip
