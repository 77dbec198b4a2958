"""The admin lets an operator govern without the API, through the services and the engine."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.messages import get_messages
from django.urls import reverse

from workflows.engine.runs import run_start
from workflows.models import (
    Run,
    RunStatus,
    Workflow,
    WorkflowGroupObjectPermission,
    WorkflowUserObjectPermission,
    WorkflowVersion,
)

SPEC = """
slug: fetch-and-sum
name: Fetch and sum
inputs:
  n: {type: integer, default: 2}
steps:
  - id: fetch
    tool: noop
    with: {value: "{{ inputs.n }}"}
  - id: total
    tool: noop
    with: {value: "{{ steps.fetch.output * 10 }}"}
"""
INVALID_SPEC = """
slug: fetch-and-sum
steps:
  - id: fetch
    tool: noop
  - id: total
    needs: [fetchh]
    tool: noop
  - id: total
    tool: nope
"""
SLOW_SPEC = """
slug: slow
steps:
  - id: wait
    tool: sleep
    with: {seconds: 3600}
"""


@pytest.fixture(params=["superuser", "operator"])
def staff(request, make_user):
    """Both kinds of people who govern from the admin."""
    if request.param == "superuser":
        return make_user(superuser=True)
    user = make_user("operator")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


@pytest.fixture
def admin_client(client, staff):
    client.force_login(staff)
    return client


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def spec_errors(response) -> list[str]:
    return list(response.context["adminform"].form.errors["spec"])


# Workflows: create and publish


def test_creating_a_workflow_from_a_spec_makes_version_1(admin_client, staff):
    response = admin_client.post(reverse("admin:workflows_workflow_add"), {"spec": SPEC})

    assert response.status_code == 302
    workflow = Workflow.objects.get(slug="fetch-and-sum")
    assert workflow.name == "Fetch and sum"
    assert workflow.owner == staff
    assert workflow.current_version.number == 1
    assert workflow.current_version.source == SPEC
    assert staff.has_perm("workflows.run_workflow", workflow)


def test_an_invalid_spec_shows_every_error_with_its_path_and_saves_nothing(admin_client):
    response = admin_client.post(reverse("admin:workflows_workflow_add"), {"spec": INVALID_SPEC})

    assert response.status_code == 200
    errors = spec_errors(response)
    assert errors[:2] == [
        "steps[2].id: duplicate step id 'total' (also steps[1])",
        "steps[1].needs[0]: unknown step 'fetchh'",
    ]
    assert errors[2].startswith("steps[2].tool: unknown tool 'nope' (available: ")
    assert "steps[1].needs[0]: unknown step &#x27;fetchh&#x27;" in response.content.decode()
    assert not Workflow.objects.exists()
    assert not WorkflowVersion.objects.exists()


def test_the_unknown_need_is_reported_at_its_path(admin_client):
    spec = SPEC.replace("  - id: total\n", "  - id: total\n    needs: [fetchh]\n")

    response = admin_client.post(reverse("admin:workflows_workflow_add"), {"spec": spec})

    assert spec_errors(response) == ["steps[1].needs[0]: unknown step 'fetchh'"]
    assert not Workflow.objects.exists()


def test_unparseable_yaml_is_a_form_error(admin_client):
    response = admin_client.post(reverse("admin:workflows_workflow_add"), {"spec": "steps: [\n"})

    assert spec_errors(response)[0] == "The spec is not valid YAML or JSON."
    assert not Workflow.objects.exists()


def test_publishing_a_changed_spec_makes_the_next_version_current(admin_client, make_workflow):
    workflow = make_workflow(SPEC)
    url = reverse("admin:workflows_workflow_change", args=[workflow.pk])
    changed = SPEC.replace("default: 2", "default: 3")

    page = admin_client.get(url)
    response = admin_client.post(url, {"spec": changed})

    assert page.status_code == 200
    assert page.context["adminform"].form["spec"].value() == SPEC  # prefilled for editing
    assert response.status_code == 302
    workflow.refresh_from_db()
    assert workflow.current_version.number == 2
    assert workflow.current_version.spec["inputs"]["n"]["default"] == 3
    assert list(workflow.versions.values_list("number", flat=True)) == [2, 1]
    assert "Published fetch-and-sum version 2." in messages_of(response)


def test_publishing_the_same_spec_again_creates_no_version(admin_client, make_workflow):
    workflow = make_workflow(SPEC)
    url = reverse("admin:workflows_workflow_change", args=[workflow.pk])

    response = admin_client.post(url, {"spec": SPEC})

    assert response.status_code == 302
    assert workflow.versions.count() == 1
    assert "The spec is unchanged; version 1 stays current." in messages_of(response)


def test_publishing_an_invalid_spec_keeps_the_current_version(admin_client, make_workflow):
    workflow = make_workflow(SPEC)
    url = reverse("admin:workflows_workflow_change", args=[workflow.pk])

    response = admin_client.post(url, {"spec": INVALID_SPEC})

    assert response.status_code == 200
    assert "steps[1].needs[0]: unknown step 'fetchh'" in spec_errors(response)
    workflow.refresh_from_db()
    assert workflow.versions.count() == 1
    assert workflow.current_version.number == 1


def test_a_spec_for_another_slug_is_rejected_on_publish(admin_client, make_workflow):
    workflow = make_workflow(SPEC)
    url = reverse("admin:workflows_workflow_change", args=[workflow.pk])

    response = admin_client.post(url, {"spec": SPEC.replace("fetch-and-sum", "other")})

    assert "slug: must be 'fetch-and-sum'" in spec_errors(response)
    assert workflow.versions.count() == 1


def test_workflows_cannot_be_deleted_from_the_admin(admin_client, make_workflow):
    workflow = make_workflow(SPEC)

    response = admin_client.post(
        reverse("admin:workflows_workflow_delete", args=[workflow.pk]), {"post": "yes"}
    )

    assert response.status_code == 403
    assert Workflow.objects.filter(pk=workflow.pk).exists()


# Workflows: actions


def test_pause_and_unpause_actions(admin_client, make_workflow):
    workflow = make_workflow(SPEC)
    url = reverse("admin:workflows_workflow_changelist")

    response = admin_client.post(url, {"action": "pause", "_selected_action": [workflow.pk]})

    assert response.status_code == 302
    workflow.refresh_from_db()
    assert workflow.paused
    assert "Paused 1: fetch-and-sum." in messages_of(response)

    admin_client.post(url, {"action": "unpause", "_selected_action": [workflow.pk]})

    workflow.refresh_from_db()
    assert not workflow.paused


def test_start_run_action_starts_a_run_with_default_inputs(admin_client, make_workflow, staff):
    workflow = make_workflow(SPEC)

    response = admin_client.post(
        reverse("admin:workflows_workflow_changelist"),
        {"action": "start_run", "_selected_action": [workflow.pk]},
    )

    run = Run.objects.get(workflow=workflow)
    assert run.inputs == {"n": 2}
    assert run.started_by == staff
    [message] = messages_of(response)
    assert message.startswith("fetch-and-sum: started run <a href=")
    assert str(run.pk) in message


def test_start_run_action_reports_a_paused_workflow(admin_client, make_workflow):
    workflow = make_workflow(SPEC)
    Workflow.objects.filter(pk=workflow.pk).update(paused=True)

    response = admin_client.post(
        reverse("admin:workflows_workflow_changelist"),
        {"action": "start_run", "_selected_action": [workflow.pk]},
    )

    assert not Run.objects.exists()
    assert messages_of(response) == ["fetch-and-sum: Workflow 'fetch-and-sum' is paused."]


def test_changelist_shows_current_version_and_owner(admin_client, make_workflow, operator):
    make_workflow(SPEC)

    response = admin_client.get(reverse("admin:workflows_workflow_changelist"))

    assert response.status_code == 200
    row = response.context["cl"].result_list[0]
    assert (row.slug, row.current_version.number, row.owner) == ("fetch-and-sum", 1, operator)


# Workflows: object permissions through django-guardian's admin pages


def test_granting_a_user_object_permissions_uses_the_direct_fk_table(
    admin_client, make_workflow, make_user
):
    workflow = make_workflow(SPEC)
    pilot = make_user("pilot")
    url = reverse("admin:workflows_workflow_permissions_manage_user", args=[workflow.pk, pilot.pk])

    response = admin_client.post(url, {"permissions": ["view_workflow", "run_workflow"]})

    assert response.status_code == 302
    granted = WorkflowUserObjectPermission.objects.filter(user=pilot, content_object=workflow)
    assert sorted(granted.values_list("permission__codename", flat=True)) == [
        "run_workflow",
        "view_workflow",
    ]
    assert pilot.has_perm("workflows.run_workflow", workflow)
    overview = admin_client.get(reverse("admin:workflows_workflow_permissions", args=[workflow.pk]))
    assert overview.status_code == 200
    assert pilot in overview.context["users_perms"]


def test_granting_a_group_object_permissions_uses_the_direct_fk_table(admin_client, make_workflow):
    workflow = make_workflow(SPEC)
    viewers = Group.objects.get(name="viewer")
    url = reverse(
        "admin:workflows_workflow_permissions_manage_group", args=[workflow.pk, viewers.pk]
    )

    admin_client.post(url, {"permissions": ["view_workflow"]})

    granted = WorkflowGroupObjectPermission.objects.filter(group=viewers, content_object=workflow)
    assert list(granted.values_list("permission__codename", flat=True)) == ["view_workflow"]


# Versions: read-only


def test_version_admin_is_read_only(admin_client, make_workflow):
    workflow = make_workflow(SPEC)
    version = workflow.current_version
    url = reverse("admin:workflows_workflowversion_change", args=[version.pk])

    page = admin_client.get(url)
    change = admin_client.post(url, {"number": 7, "source": "slug: x"})
    add = admin_client.get(reverse("admin:workflows_workflowversion_add"))
    delete = admin_client.post(
        reverse("admin:workflows_workflowversion_delete", args=[version.pk]), {"post": "yes"}
    )

    assert page.status_code == 200
    assert "fetch-and-sum" in page.content.decode()
    assert (change.status_code, add.status_code, delete.status_code) == (403, 403, 403)
    version.refresh_from_db()
    assert version.number == 1


# Runs: watch and cancel


def test_cancel_action_cancels_a_running_run(admin_client, make_workflow, operator):
    run, _ = run_start(workflow=make_workflow(SLOW_SPEC), inputs={}, started_by=operator)
    assert run.status == RunStatus.RUNNING

    response = admin_client.post(
        reverse("admin:workflows_run_changelist"),
        {"action": "cancel", "_selected_action": [run.pk]},
    )

    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert run.step_runs.get().status == "CANCELLED"
    assert messages_of(response) == ["Cancelled 1 run(s)."]


def test_cancelling_a_finished_run_reports_the_conflict(admin_client, make_workflow, drain):
    run, _ = run_start(workflow=make_workflow(SPEC), inputs={})
    drain()
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED

    response = admin_client.post(
        reverse("admin:workflows_run_changelist"),
        {"action": "cancel", "_selected_action": [run.pk]},
    )

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert messages_of(response) == [f"Run {run.pk} is already COMPLETED."]


def test_run_list_filters_by_status_and_workflow_and_searches_by_id(admin_client, make_workflow):
    first, _ = run_start(workflow=make_workflow(SPEC), inputs={})
    second, _ = run_start(workflow=make_workflow(SLOW_SPEC), inputs={})
    Run.objects.filter(pk=first.pk).update(status=RunStatus.FAILED)
    url = reverse("admin:workflows_run_changelist")

    def listed(query):
        response = admin_client.get(url, query)
        assert response.status_code == 200
        return [run.pk for run in response.context["cl"].result_list]

    assert listed({}) == [second.pk, first.pk]
    assert listed({"status__exact": "FAILED"}) == [first.pk]
    assert listed({"workflow__id__exact": second.workflow_id}) == [second.pk]
    assert listed({"q": str(second.pk)}) == [second.pk]
    assert listed({"q": str(first.pk)[:8]}) == [first.pk]


def test_run_page_shows_steps_and_events_and_is_read_only(admin_client, make_workflow, drain):
    run, _ = run_start(workflow=make_workflow(SPEC), inputs={"n": 4})
    drain()
    url = reverse("admin:workflows_run_change", args=[run.pk])

    page = admin_client.get(url)
    change = admin_client.post(url, {"status": "FAILED"})
    add = admin_client.get(reverse("admin:workflows_run_add"))
    delete = admin_client.post(
        reverse("admin:workflows_run_delete", args=[run.pk]), {"post": "yes"}
    )

    assert page.status_code == 200
    inlines = {
        formset.opts.model._meta.model_name: formset
        for formset in page.context["inline_admin_formsets"]
    }
    assert set(inlines) == {"runstep", "steprun", "runevent"}
    assert [form.instance.step_id for form in inlines["runstep"].formset.forms] == [
        "fetch",
        "total",
    ]
    event_types = [form.instance.type for form in inlines["runevent"].formset.forms]
    assert event_types[0] == "run.created"
    assert "step.succeeded" in event_types
    assert "&quot;total&quot;: 40" in page.content.decode()  # the result, pretty-printed
    assert (change.status_code, add.status_code, delete.status_code) == (403, 403, 403)
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED


def test_a_viewer_sees_the_current_spec_but_cannot_publish(client, make_user, make_workflow):
    workflow = make_workflow(SPEC)
    auditor = make_user()
    auditor.is_staff = True
    auditor.save(update_fields=["is_staff"])
    auditor.user_permissions.add(Permission.objects.get(codename="view_workflow"))
    client.force_login(auditor)
    url = reverse("admin:workflows_workflow_change", args=[workflow.pk])

    page = client.get(url)
    publish = client.post(url, {"spec": SPEC.replace("default: 2", "default: 5")})

    assert page.status_code == 200
    assert "Publish a new version" not in page.content.decode()
    assert "Current spec" in page.content.decode()
    assert publish.status_code == 403
    assert workflow.versions.count() == 1
