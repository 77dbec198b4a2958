"""Every privileged act leaves one append-only audit entry, written with the act: the table below
lists the privileged services; a service added without an entry fails here."""

import pytest
import redis
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.models import Group
from django.test import RequestFactory, override_settings
from django.utils import timezone
from guardian.shortcuts import assign_perm, remove_perm

from accounts.models import AuditEntry
from agents import breaker
from agents.models import Agent, Provider
from agents.services import (
    agent_create,
    agent_version_publish,
    agents_enable,
    provider_breaker_reset,
    provider_save,
)
from guardians.models import Guardian
from guardians.services import guardian_create, guardian_version_publish
from interventions.expiry import interventions_expire_due
from interventions.models import Intervention
from interventions.services import (
    intervention_claim,
    intervention_delegate,
    intervention_release,
    intervention_resolve,
)
from tests.conftest import drain
from tests.workflows.test_api import client_for
from workflows.engine import api
from workflows.models import Workflow
from workflows.schedules import schedule_delete, schedule_save
from workflows.services import workflow_create, workflow_set_paused, workflow_version_publish

pytestmark = pytest.mark.django_db

FLOW = "slug: audited\nsteps: [{id: a, tool: noop}]\n"
SIM = {"slug": "sim", "kind": "simulated"}
AGENT = {"slug": "helper", "prompt": "hi", "chain": [{"provider": "sim", "model": "m"}]}
GUARDIAN = {"slug": "audit-point", "kind": "PASS_THRU"}


def _workflow(user) -> Workflow:
    return Workflow.objects.filter(slug="audited").first() or workflow_create(
        source=FLOW, created_by=user
    )


def _run(user):
    return api.run_start(workflow=_workflow(user), inputs={}, started_by=user)[0]


def _agent(user) -> Agent:
    provider_save(source=SIM, by=user)
    return Agent.objects.filter(slug="helper").first() or agent_create(source=AGENT, by=user)


FAILING = "slug: failing\nsteps: [{id: a, tool: json.extract, with: {data: {}, path: x}}]\n"


def _failed_run(user):
    workflow = Workflow.objects.filter(slug="failing").first() or workflow_create(
        source=FAILING, created_by=user
    )
    run = api.run_start(workflow=workflow, inputs={}, started_by=user)[0]
    drain()
    return run


ASKING = "slug: asking\nsteps: [{id: ask, human: {type: approval, approvals: 2}}]\n"


def _asking(user):
    workflow = Workflow.objects.filter(slug="asking").first() or workflow_create(
        source=ASKING, created_by=user
    )
    return api.run_start(workflow=workflow, inputs={}, started_by=user)[0]


def _intervention(user, *, claimed=False) -> Intervention:
    run = _asking(user)
    drain()
    intervention = Intervention.objects.get(run_id=run.pk)
    if claimed:
        intervention_claim(intervention_id=intervention.pk, user=user)
    return intervention


def _overdue(user) -> Intervention:
    source = "slug: expiring\nsteps: [{id: ask, human: {due_in: 1h, on_expiry: reject}}]\n"
    workflow = Workflow.objects.filter(slug="expiring").first() or workflow_create(
        source=source, created_by=user
    )
    run = api.run_start(workflow=workflow, inputs={}, started_by=user)[0]
    drain()
    Intervention.objects.filter(run_id=run.pk).update(due_at=timezone.now())
    return Intervention.objects.get(run_id=run.pk)


def _schedule(user, schedule=None):
    return schedule_save(schedule=schedule, name="hourly", workflow=_workflow(user),
                         cron="0 * * * *", by=user)  # fmt: skip


def _resolve(user, intervention, decision="reject"):
    return intervention_resolve(intervention_id=intervention.pk, user=user, decision=decision)


def _locked_out(user) -> None:
    with override_settings(AXES_FAILURE_LIMIT=2):
        for _ in range(2):
            authenticate(RequestFactory().post("/login/"), username=user.username, password="no")


def _username_locked_out(user) -> None:
    cache = redis.Redis.from_url(settings.REDIS_URL)  # its counts outlive test databases
    for key in cache.scan_iter("*sign-in-failures:*"):
        cache.delete(key)
    with override_settings(AXES_USERNAME_FAILURE_LIMIT=2):
        for n in range(2):
            request = RequestFactory().post("/login/", REMOTE_ADDR=f"10.9.0.{n}")
            authenticate(request, username=user.username, password="no")


# action -> (setup returning what the act needs, the act)
PRIVILEGED = {
    "workflow.publish": (lambda u: None, lambda u, _: workflow_create(source=FLOW, created_by=u)),
    "workflow.publish (version)": (
        _workflow,
        lambda u, w: workflow_version_publish(
            workflow=w, source=FLOW + "name: v2\n", published_by=u
        ),  # fmt: skip
    ),
    "workflow.pause": (_workflow, lambda u, w: workflow_set_paused(workflow=w, paused=True, by=u)),
    "run.start": (_workflow, lambda u, w: api.run_start(workflow=w, inputs={}, started_by=u)),
    "run.cancel": (_run, lambda u, run: api.run_cancel(run_id=run.pk, by=u)),
    "run.retry": (_failed_run, lambda u, run: api.run_retry(run_id=run.pk, by=u)),
    "schedule.create": (_workflow, lambda u, _: _schedule(u)),
    "schedule.change": (_schedule, lambda u, s: _schedule(u, s)),
    "schedule.delete": (_schedule, lambda u, s: schedule_delete(schedule=s, by=u)),
    "provider.publish": (lambda u: None, lambda u, _: provider_save(source=SIM, by=u)),
    "provider.breaker_reset": (
        lambda u: provider_save(source=SIM, by=u)[0],
        lambda u, p: provider_breaker_reset(provider=p, by=u),
    ),
    "agent.publish": (
        lambda u: provider_save(source=SIM, by=u),
        lambda u, _: agent_create(source=AGENT, by=u),
    ),
    "agent.publish (version)": (
        _agent,
        lambda u, a: agent_version_publish(agent=a, source={**AGENT, "prompt": "hello"}, by=u),
    ),
    "agent.disable": (
        _agent,
        lambda u, a: agents_enable(Agent.objects.filter(pk=a.pk), enabled=False, by=u),
    ),
    "guardian.publish": (lambda u: None, lambda u, _: guardian_create(source=GUARDIAN, by=u)),
    "guardian.publish (version)": (
        lambda u: Guardian.objects.first() or guardian_create(source=GUARDIAN, by=u),
        lambda u, g: guardian_version_publish(guardian=g, source={**GUARDIAN, "name": "v2"}, by=u),
    ),
    "intervention.open": (lambda u: None, lambda u, _: _intervention(u)),
    "intervention.claim": (
        _intervention,
        lambda u, i: intervention_claim(intervention_id=i.pk, user=u),
    ),
    "intervention.release": (
        lambda u: _intervention(u, claimed=True),
        lambda u, i: intervention_release(intervention_id=i.pk, user=u),
    ),
    "intervention.approve": (_intervention, lambda u, i: _resolve(u, i, "approve")),
    "intervention.resolve": (_intervention, _resolve),
    "intervention.delegate": (
        _intervention,
        lambda u, i: intervention_delegate(intervention_id=i.pk, user=u, to=u.username),
    ),
    "intervention.cancel": (_intervention, lambda u, i: api.run_cancel(run_id=i.run_id, by=u)),
    "intervention.expire": (_overdue, lambda u, i: interventions_expire_due()),
    "auth.lockout": (lambda u: None, lambda u, _: _locked_out(u)),
    "auth.lockout (username, from any address)": (
        lambda u: None,
        lambda u, _: _username_locked_out(u),
    ),
    "permission.grant": (
        _workflow,
        lambda u, w: assign_perm("view_workflow", Group.objects.get(name="viewer"), w),
    ),
}


@pytest.mark.parametrize("act", PRIVILEGED)
def test_every_privileged_act_leaves_exactly_one_entry_of_its_own(act, operator):
    setup, perform = PRIVILEGED[act]
    needed = setup(operator)
    before = set(AuditEntry.objects.values_list("pk", flat=True))

    perform(operator, needed)

    new = AuditEntry.objects.exclude(pk__in=before)
    action = act.split(" ")[0]
    assert list(new.filter(action=action).values_list("action", flat=True)) == [action]
    assert new.get(action=action).actor_name in (operator.username, "")


def test_an_entry_names_the_actor_object_change_and_address(operator):
    workflow = _workflow(operator)
    client = client_for(operator)

    client.patch("/api/workflows/audited/", {"paused": True}, format="json", REMOTE_ADDR="10.1.2.3")

    entry = AuditEntry.objects.get(action="workflow.pause")
    assert (entry.actor, entry.object_type, entry.object_id) == (
        operator, "workflows.workflow", str(workflow.pk),
    )  # fmt: skip
    assert (entry.before, entry.after, entry.ip) == (
        {"paused": False},
        {"paused": True},
        "10.1.2.3",
    )


def test_behind_a_proxy_an_entry_has_the_address_the_proxy_saw(operator, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    _workflow(operator)
    proxied = {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.7"}

    client_for(operator).patch("/api/workflows/audited/", {"paused": True}, format="json",
                               **proxied)  # fmt: skip

    assert AuditEntry.objects.get(action="workflow.pause").ip == "203.0.113.7"


def test_a_revoked_permission_is_audited(operator):
    workflow = _workflow(operator)
    viewers = Group.objects.get(name="viewer")
    assign_perm("view_workflow", viewers, workflow)

    remove_perm("view_workflow", viewers, workflow)

    revoke = AuditEntry.objects.get(action="permission.revoke")
    assert revoke.before == {"permission": "view_workflow", "to": "viewer"}


def test_entries_cannot_be_changed_or_deleted(operator):
    entry = AuditEntry.objects.get(action="workflow.publish", object_id=str(_workflow(operator).pk))

    with pytest.raises(ValueError, match="append-only"):
        entry.save()
    with pytest.raises(ValueError, match="append-only"):
        entry.delete()


def test_admins_read_the_log_over_the_api_and_nobody_else_knows_it(operator, make_user):
    _run(operator)
    admin = client_for(make_user("admin"))

    entries = admin.get("/api/audit/?action=run.start").json()["results"]

    assert [entry["action"] for entry in entries] == ["run.start"]
    assert entries[0]["actor_name"] == operator.username
    assert client_for(operator).get("/api/audit/").status_code == 404
    assert client_for().get("/api/audit/").status_code == 401


def test_the_admin_shows_the_log_read_only(client, make_user, operator):
    _workflow(operator)
    client.force_login(make_user(superuser=True))

    listing = client.get("/admin/accounts/auditentry/")
    entry = AuditEntry.objects.first()

    assert listing.status_code == 200 and "workflow.publish" in listing.content.decode()
    assert client.get(f"/admin/accounts/auditentry/{entry.pk}/delete/").status_code == 403
    assert client.get("/admin/accounts/auditentry/add/").status_code == 403
    assert breaker  # imported for the reset act
    assert Provider  # and the provider it resets
