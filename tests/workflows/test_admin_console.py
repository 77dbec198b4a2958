"""The admin reads like a product: branded, with pause buttons, a run form and a run page."""

import re

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEntry
from workflows.engine.api import run_start
from workflows.models import Run, RunStep


@pytest.fixture
def operator_client(client, make_user):
    user = make_user("operator")
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client.force_login(user)
    client.user = user
    return client


def test_the_admin_is_branded_chameleon(operator_client):
    page = operator_client.get(reverse("admin:index")).content.decode()

    assert "<title>Chameleon console | Chameleon</title>" in page
    assert '<a href="/admin/">Chameleon</a>' in page
    assert "Django administration" not in page
    assert "Site administration" not in page


# The workflow page: pause, unpause, start a run with inputs

TYPED_SPEC = """
slug: typed
name: Typed inputs
inputs:
  name: {type: string, default: world}
  count: {type: integer, required: true}
  ratio: {type: number, default: 0.5}
  loud: {type: boolean, default: false}
  options: {type: object, default: {a: 1}}
  tags: {type: array, default: []}
steps:
  - id: greet
    tool: noop
    with: {value: "{{ inputs.name }}"}
"""


def test_the_workflow_page_pauses_and_unpauses_with_an_audit_entry(operator_client, make_workflow):
    workflow = make_workflow(TYPED_SPEC)
    page_url = reverse("admin:workflows_workflow_change", args=[workflow.pk])
    pause_url = reverse("admin:workflows_workflow_pause", args=[workflow.pk])

    page = operator_client.get(page_url).content.decode()
    paused = operator_client.post(pause_url, {"paused": "1"})
    paused_page = operator_client.get(page_url).content.decode()
    workflow.refresh_from_db()
    was_paused = workflow.paused
    operator_client.post(pause_url, {"paused": "0"})

    assert f'action="{pause_url}"' in page and "Pause (no new runs)" in page
    assert paused.status_code == 302 and paused.url == page_url
    assert was_paused
    assert "Unpause</button>" in paused_page and "Start a run" not in paused_page
    workflow.refresh_from_db()
    assert not workflow.paused
    entries = AuditEntry.objects.filter(object_id=str(workflow.pk)).order_by("id")
    assert [(e.action, e.actor) for e in entries if "pause" in e.action] == [
        ("workflow.pause", operator_client.user),
        ("workflow.unpause", operator_client.user),
    ]


def test_pausing_needs_change_permission_and_a_post(client, make_user, make_workflow):
    workflow = make_workflow(TYPED_SPEC)
    viewer = make_user()
    viewer.is_staff = True
    viewer.save(update_fields=["is_staff"])
    viewer.user_permissions.add(Permission.objects.get(codename="view_workflow"))
    client.force_login(viewer)
    pause_url = reverse("admin:workflows_workflow_pause", args=[workflow.pk])

    page = client.get(reverse("admin:workflows_workflow_change", args=[workflow.pk]))
    refused = client.post(pause_url, {"paused": "1"})

    assert "Pause (no new runs)" not in page.content.decode()
    assert refused.status_code == 403
    assert client.get(pause_url).status_code == 405
    workflow.refresh_from_db()
    assert not workflow.paused


def test_a_run_starts_with_the_typed_inputs_of_the_form(operator_client, make_workflow):
    workflow = make_workflow(TYPED_SPEC)
    url = reverse("admin:workflows_workflow_start", args=[workflow.pk])

    form_page = operator_client.get(url)
    response = operator_client.post(
        url,
        {"name": "Ada", "count": "3", "ratio": "", "loud": "on", "options": '{"b": [1, 2]}',
         "tags": '["x"]'},
    )  # fmt: skip

    fields = form_page.context["form"].fields
    assert list(fields) == ["name", "count", "ratio", "loud", "options", "tags"]
    assert fields["name"].initial == "world"
    run = Run.objects.get(workflow=workflow)
    assert response.status_code == 302
    assert response.url == reverse("admin:workflows_run_change", args=[run.pk])
    assert run.started_by == operator_client.user
    assert run.inputs == {
        "name": "Ada", "count": 3, "ratio": 0.5, "loud": True, "options": {"b": [1, 2]},
        "tags": ["x"],
    }  # fmt: skip


def test_the_engine_refusing_the_inputs_shows_the_input_on_the_form(operator_client, make_workflow):
    workflow = make_workflow(TYPED_SPEC)
    url = reverse("admin:workflows_workflow_start", args=[workflow.pk])

    response = operator_client.post(url, {"name": "Ada", "options": "[1, 2]", "tags": "[]"})

    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors["count"] == ["count: is required"]
    assert errors["options"] == ["options: must be of type object"]
    assert "count: is required" in response.content.decode()
    assert not Run.objects.exists()


def test_starting_a_run_needs_run_permission_and_a_visible_workflow(
    client, make_user, make_workflow
):
    workflow = make_workflow(TYPED_SPEC)
    viewer = make_user()
    viewer.is_staff = True
    viewer.save(update_fields=["is_staff"])
    client.force_login(viewer)
    url = reverse("admin:workflows_workflow_start", args=[workflow.pk])

    hidden = client.post(url, {"count": "1"})
    viewer.user_permissions.add(Permission.objects.get(codename="view_workflow"))
    refused = client.post(url, {"count": "1"})

    assert hidden.status_code == 404
    assert refused.status_code == 403
    assert not Run.objects.exists()


# The run page

CHILD_SPEC = """
slug: child
inputs: {x: {type: integer, required: true}}
steps:
  - id: double
    tool: noop
    with: {value: "{{ inputs.x * 2 }}"}
outputs: {doubled: "{{ steps.double.output }}"}
"""
PARENT_SPEC = """
slug: parent
steps:
  - id: call
    workflow: child
    with: {x: 21}
  - id: after
    tool: noop
    with: {value: "{{ steps.call.output.doubled }}"}
"""


def test_the_run_page_shows_statuses_durations_times_and_links_child_runs(
    operator_client, make_workflow, drain
):
    make_workflow(CHILD_SPEC)
    parent = make_workflow(PARENT_SPEC)
    run, _ = run_start(workflow=parent, inputs={}, started_by=operator_client.user)
    drain()
    run.refresh_from_db()
    child = run.child_runs.get()
    run_url = reverse("admin:workflows_run_change", args=[run.pk])
    child_url = reverse("admin:workflows_run_change", args=[child.pk])

    page = operator_client.get(run_url)
    child_page = operator_client.get(child_url).content.decode()

    html = page.content.decode()
    steps = next(
        f for f in page.context["inline_admin_formsets"] if f.opts.model is RunStep
    ).formset.forms
    assert [form.instance.step_id for form in steps] == ["call", "after"]
    assert html.count(f'href="{child_url}"') >= 2  # the run's child runs and the step's row
    assert "Child runs" in html and "Duration" in html
    assert ">Completed</span>" in html and "#15803d" in html  # the colour, and its text
    assert f"{timezone.localtime(run.created_at):%Y-%m-%d %H:%M:%S}" in html
    assert "(just now)" in html and "0 minutes ago" not in html
    assert f'href="{run_url}"' in child_page  # the child links back to its parent


LONG_OUTPUT_SPEC = """
slug: contract-review
steps:
  - id: summarize
    tool: noop
    with: {value: "{{ 'clause ' * 60 }}"}
"""


def run_page(run) -> str:
    return reverse("admin:workflows_run_change", args=[run.pk])


def test_the_run_page_names_the_run_and_writes_money_degraded_and_failures_plainly(
    operator_client, make_workflow, drain
):
    run, _ = run_start(workflow=make_workflow(LONG_OUTPUT_SPEC), inputs={},
                       started_by=operator_client.user)  # fmt: skip
    drain()
    Run.objects.filter(pk=run.pk).update(status="FAILED", error="abort by pilot: Too risky.",
                                         budget_usd=1, degraded=True)  # fmt: skip

    html = operator_client.get(run_page(run)).content.decode()

    title = f"Run {str(run.pk)[:8]}… of contract-review v1"
    assert f"<title>{title} | Chameleon</title>" in html and f"<h1>{title}</h1>" in html
    assert f"&rsaquo; {title}\n</div>" in html and f"{run.workflow_id}/{run.pk}" not in html
    assert f"{run.workflow_id}:v1" not in html and "contract-review v1" in html
    assert "Failed: abort by pilot: Too risky. Retry" in html and "risky.." not in html
    assert '<div class="readonly">$1.00</div>' in html and "None: no budget" not in html
    assert '<div class="readonly">$0.00</div>' in html and "0.000000" not in html
    assert ">Yes</span> (a step ran without" in html
    assert ".tabular td.original p { display: none; }" in html
    assert "p.m." not in html and "a.m." not in html  # the events' times too
    output = re.search(r'<span class="chameleon-brief">(.*?)</span>', html).group(1)
    assert output.startswith("&quot;clause clause") and output.endswith("…") and len(output) < 200


def test_a_run_without_a_budget_says_so(operator_client, make_workflow, drain):
    run, _ = run_start(workflow=make_workflow(LONG_OUTPUT_SPEC), inputs={})

    html = operator_client.get(run_page(run)).content.decode()

    assert '<div class="readonly">No budget</div>' in html
    assert '<div class="readonly">No</div>' in html  # not degraded, in words
