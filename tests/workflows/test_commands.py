"""load_workflows, run_workflow and sweep: thin commands over the loader, the engine and sweeps."""

import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.utils import timezone

from workflows.engine.runs import run_start
from workflows.models import Run, RunStatus, StepRun, Workflow

GREET = """
slug: greet
name: Greet
description: Say hello.
inputs:
  name: {type: string, default: world}
  times: {type: integer, default: 1}
steps:
  - id: a
    tool: template.render
    with: {template: "Hello, {{ inputs.name }}"}
  - id: b
    tool: noop
    with: {value: "{{ inputs.times * 2 }}"}
outputs:
  text: "{{ steps.a.output.text }}"
  doubled: "{{ steps.b.output }}"
"""
BROKEN = """
slug: broken
steps:
  - id: a
    tool: noop
  - id: b
    needs: [fetchh]
    tool: noop
"""
FAILING = """
slug: failing
steps:
  - id: a
    tool: noop
    with: {value: {present: 1}}
  - id: b
    tool: json.extract
    with: {data: "{{ steps.a.output }}", path: missing}
"""
SLOW = """
slug: slow
steps:
  - id: nap
    tool: sleep
    with: {seconds: 3600}
"""


def call(*args, **options) -> tuple[str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    call_command(*args, stdout=stdout, stderr=stderr, **options)
    return stdout.getvalue(), stderr.getvalue()


def call_failing(*args, **options) -> tuple[CommandError, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command(*args, stdout=stdout, stderr=stderr, **options)
    return raised.value, stdout.getvalue(), stderr.getvalue()


@pytest.fixture
def admin_user(make_user):
    return make_user(superuser=True, username="root")


# load_workflows


@pytest.mark.django_db
def test_load_workflows_loads_valid_files_and_reports_invalid_ones_by_path(tmp_path, admin_user):
    (tmp_path / "greet.yaml").write_text(GREET)
    (tmp_path / "broken.yml").write_text(BROKEN)
    (tmp_path / "notes.txt").write_text("not a spec")

    error, stdout, stderr = call_failing("load_workflows", str(tmp_path))

    assert error.returncode != 0
    assert str(error) == "1 of 2 spec files could not be loaded."
    assert stdout == f"{tmp_path / 'greet.yaml'}: created greet v1\n"
    assert stderr.splitlines() == [
        f"{tmp_path / 'broken.yml'}: invalid",
        "  steps[1].needs[0]: unknown step 'fetchh'",
    ]
    greet = Workflow.objects.get(slug="greet")
    assert greet.owner == admin_user
    assert not Workflow.objects.filter(slug="broken").exists()


@pytest.mark.django_db
def test_loading_twice_publishes_nothing_new_and_a_changed_file_makes_version_2(
    tmp_path, admin_user
):
    spec_file = tmp_path / "greet.json"
    spec_file.write_text(json.dumps({"slug": "greet", "steps": [{"id": "a", "tool": "noop"}]}))
    call("load_workflows", str(tmp_path))

    again, _ = call("load_workflows", str(tmp_path))
    spec_file.write_text(json.dumps({"slug": "greet", "steps": [{"id": "b", "tool": "noop"}]}))
    changed, _ = call("load_workflows", str(tmp_path))

    assert again == f"{spec_file}: unchanged greet v1\n"
    assert changed == f"{spec_file}: published greet v2\n"
    assert list(Workflow.objects.get(slug="greet").versions.values_list("number", flat=True)) == [
        2,
        1,
    ]


@pytest.mark.django_db
def test_sub_workflows_load_before_the_workflows_that_call_them(tmp_path, admin_user):
    (tmp_path / "a-parent.yaml").write_text(
        "slug: parent\nsteps:\n  - id: call\n    workflow: zz-child\n"
    )
    (tmp_path / "z-child.yaml").write_text("slug: zz-child\nsteps:\n  - id: a\n    tool: noop\n")

    stdout, _ = call("load_workflows", str(tmp_path))

    assert stdout.splitlines() == [
        f"{tmp_path / 'z-child.yaml'}: created zz-child v1",
        f"{tmp_path / 'a-parent.yaml'}: created parent v1",
    ]


@pytest.mark.django_db
def test_loaded_workflows_are_granted_to_the_role_groups(tmp_path, make_user, admin_user):
    (tmp_path / "greet.yaml").write_text(GREET)
    pilot, viewer, service = make_user("pilot"), make_user("viewer"), make_user("service")

    call("load_workflows", str(tmp_path))

    greet = Workflow.objects.get(slug="greet")
    assert pilot.has_perm("workflows.view_workflow", greet)
    assert not pilot.has_perm("workflows.run_workflow", greet)
    assert viewer.has_perm("workflows.view_workflow", greet)
    assert service.has_perm("workflows.view_workflow", greet)
    assert service.has_perm("workflows.run_workflow", greet)
    assert not service.has_perm("workflows.change_workflow", greet)
    assert Group.objects.get(name="service").workflowgroupobjectpermission_set.count() == 2


@pytest.mark.django_db
def test_owner_option_and_the_system_user_fallback(tmp_path, make_user):
    (tmp_path / "greet.yaml").write_text(GREET)
    alice = make_user(username="alice")

    error, _, _ = call_failing("load_workflows", str(tmp_path), owner="nobody")
    call("load_workflows", str(tmp_path))  # no superuser yet: a `system` user owns it
    (tmp_path / "greet.yaml").write_text(GREET.replace("Say hello.", "Say hi."))
    call("load_workflows", str(tmp_path), owner="alice")

    assert str(error) == "No user 'nobody'."
    greet = Workflow.objects.get(slug="greet")
    system = get_user_model().objects.get(username="system")
    assert greet.owner == system
    assert not system.has_usable_password()
    assert greet.current_version.published_by == alice
    assert greet.description == "Say hi."


@pytest.mark.django_db
def test_load_workflows_rejects_a_missing_directory(tmp_path, admin_user):
    error, _, _ = call_failing("load_workflows", str(tmp_path / "nope"))

    assert "is not a directory" in str(error)


# run_workflow


@pytest.mark.django_db
def test_run_workflow_parses_inputs_as_json_when_they_parse(make_workflow, operator):
    make_workflow(GREET)

    stdout, _ = call(
        "run_workflow",
        "greet",
        "--input-json",
        '{"name": "json", "times": 1}',
        "--input",
        "times=3",
        "--input",
        "name=Ada",
    )

    run = Run.objects.get()
    assert stdout == f"Started run {run.pk} of greet v1\n"
    assert run.inputs == {"name": "Ada", "times": 3}
    assert run.started_by == operator


@pytest.mark.django_db
def test_run_workflow_reports_bad_inputs_and_unknown_workflows(make_workflow):
    make_workflow(GREET)

    bad_type, _, _ = call_failing("run_workflow", "greet", "--input", 'name=["x"]')
    unknown_input, _, _ = call_failing("run_workflow", "greet", "--input", "colour=red")
    no_equals, _, _ = call_failing("run_workflow", "greet", "--input", "name")
    unknown, _, _ = call_failing("run_workflow", "nope")

    assert str(bad_type).splitlines()[-1] == "inputs.name: must be of type string"
    assert str(unknown_input).splitlines()[-1] == "inputs.colour: unknown input"
    assert str(no_equals) == "--input 'name': expected KEY=VALUE."
    assert str(unknown) == "No workflow 'nope'."
    assert not Run.objects.exists()


@pytest.mark.django_db
def test_run_workflow_wait_gives_up_after_the_timeout(make_workflow):
    make_workflow(SLOW)

    error, stdout, _ = call_failing("run_workflow", "slow", "--wait", "--timeout", "0.3")

    run = Run.objects.get()
    assert error.returncode == 2
    assert str(error) == f"Run {run.pk} is still RUNNING after 0.3s."


@pytest.mark.django_db(transaction=True)
def test_run_workflow_wait_prints_steps_as_they_finish_then_the_result(
    celery_worker, make_workflow
):
    make_workflow(GREET)

    stdout, _ = call("run_workflow", "greet", "--input", "name=Ada", "--wait", "--timeout", "30")

    run = Run.objects.get()
    assert run.status == RunStatus.COMPLETED
    lines = stdout.splitlines()
    assert lines[:4] == [
        f"Started run {run.pk} of greet v1",
        "  step a SUCCEEDED",
        "  step b SUCCEEDED",
        f"Run {run.pk} COMPLETED",
    ]
    assert json.loads("\n".join(lines[4:])) == {"text": "Hello, Ada", "doubled": 2}


@pytest.mark.django_db(transaction=True)
def test_run_workflow_wait_exits_non_zero_when_the_run_fails(celery_worker, make_workflow):
    make_workflow(FAILING)

    error, stdout, _ = call_failing("run_workflow", "failing", "--wait", "--timeout", "30")

    run = Run.objects.get()
    assert run.status == RunStatus.FAILED
    assert error.returncode == 1
    assert str(error).startswith(f"Run {run.pk} FAILED: json.extract: nothing at 'missing'")
    assert stdout.splitlines()[1:] == [
        "  step a SUCCEEDED",
        "  step b FAILED: json.extract: nothing at 'missing' (stopped at 'missing')",
        f"Run {run.pk} FAILED",
    ]


@pytest.mark.django_db
def test_run_workflow_inline_executes_the_steps_itself(make_workflow):
    make_workflow(
        "slug: maybe\ninputs: {go: {type: boolean, default: false}}\nsteps:\n"
        "  - id: a\n    tool: noop\n    with: {value: 1}\n"
        "  - id: b\n    when: inputs.go\n    tool: noop\n"
    )

    stdout, _ = call("run_workflow", "maybe", "--wait", "--inline", "--timeout", "10")

    run = Run.objects.get()
    assert run.status == RunStatus.COMPLETED
    assert stdout.splitlines() == [
        f"Started run {run.pk} of maybe v1",
        "  step a SUCCEEDED",
        "  step b SKIPPED (when is false: inputs.go)",
        f"Run {run.pk} COMPLETED",
        "{",
        '  "a": 1,',
        '  "b": null',
        "}",
    ]


# sweep


@pytest.mark.django_db
def test_sweep_dispatches_due_steps_whose_dispatch_was_lost(make_workflow):
    run, _ = run_start(workflow=make_workflow(SLOW), inputs={})
    StepRun.objects.filter(run=run).update(dispatched_at=timezone.now() - timedelta(minutes=5))

    first, _ = call("sweep")
    second, _ = call("sweep")

    # then the plug-ins': interventions expired, warned of their due time, notifications resent
    assert (
        first
        == "dispatched 1, woken 0, recovered 0, holds released 0, expired 0, warned 0, resent 0\n"
    )
    assert (
        second
        == "dispatched 0, woken 0, recovered 0, holds released 0, expired 0, warned 0, resent 0\n"
    )


@pytest.mark.django_db
def test_sweep_loop_runs_the_given_number_of_rounds(make_workflow):
    run, _ = run_start(workflow=make_workflow(SLOW), inputs={})
    StepRun.objects.filter(run=run).update(dispatched_at=timezone.now() - timedelta(minutes=5))

    stdout, _ = call("sweep", "--loop", "--interval", "0", "--rounds", "3")

    assert stdout.splitlines() == [
        "dispatched 1, woken 0, recovered 0, holds released 0, expired 0, warned 0, resent 0",
        "Stopped after 3 sweep(s).",
    ]
