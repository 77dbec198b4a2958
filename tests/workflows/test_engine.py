"""Engine semantics, executed in-process with `drain` (durability tests use a real worker)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from config.errors import Conflict
from workflows.engine.runs import run_cancel, run_start
from workflows.engine.sweeps import steps_dispatch_due, steps_wake_due
from workflows.models import RunStatus, RunStep, StepRun, StepStatus

pytestmark = pytest.mark.django_db


def start(workflow, user, **inputs):
    run, _ = run_start(workflow=workflow, inputs=inputs, started_by=user)
    return run


def statuses(run) -> dict:
    return dict(RunStep.objects.filter(run=run).values_list("step_id", "status"))


def test_parallel_branches_join_and_results_flow_through_templates(make_workflow, operator, drain):
    workflow = make_workflow(
        """
slug: diamond
inputs: {n: {type: integer, default: 1}}
steps:
  - id: start
    tool: noop
    with: {value: "{{ inputs.n }}"}
  - id: left
    needs: [start]
    tool: noop
    with: {value: "{{ steps.start.output + 1 }}"}
  - id: right
    needs: [start]
    tool: noop
    with: {value: "{{ steps.start.output + 2 }}"}
  - id: join
    needs: [left, right]
    tool: noop
    with: {value: "{{ [steps.left.output, steps.right.output] }}"}
outputs: {pair: "{{ steps.join.output }}"}
"""
    )
    run = start(workflow, operator, n=10)
    assert set(StepRun.objects.filter(run=run).values_list("step_id", flat=True)) == {"start"}

    drain()

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert run.result == {"pair": [11, 12]}
    assert (run.progress_done, run.progress_total) == (4, 4)
    assert StepRun.objects.filter(run=run, step_id="join").count() == 1


def test_when_false_skips_and_a_step_whose_needs_all_skipped_is_skipped(
    make_workflow, operator, drain
):
    workflow = make_workflow(
        """
slug: gated
inputs: {score: {type: number, required: true}}
steps:
  - id: risk
    tool: noop
    with: {value: {score: "{{ inputs.score }}"}}
  - id: legal
    when: "steps.risk.output.score >= 0.7"
    tool: noop
    with: {value: approve}
  - id: notify
    needs: [legal]
    tool: template.render
    with: {template: "decision {{ steps.legal.output }}"}
  - id: always
    needs: [risk, legal]
    tool: noop
"""
    )
    low = start(workflow, operator, score=0.2)
    high = start(workflow, operator, score=0.9)
    drain()

    low.refresh_from_db()
    high.refresh_from_db()
    assert low.status == high.status == RunStatus.COMPLETED
    assert statuses(low) == {
        "risk": "SUCCEEDED",
        "legal": "SKIPPED",
        "notify": "SKIPPED",
        "always": "SUCCEEDED",
    }
    assert RunStep.objects.get(run=high, step_id="notify").output == {"text": "decision approve"}


def test_foreach_keeps_order_and_bounds_concurrency(make_workflow, operator, drain):
    workflow = make_workflow(
        """
slug: mapper
inputs: {words: {type: array, default: [a, b, c, d, e]}}
steps:
  - id: shout
    foreach: "inputs.words"
    concurrency: 2
    tool: template.render
    with: {template: "{{ index }}:{{ item | upper }}"}
"""
    )
    run = start(workflow, operator)
    assert StepRun.objects.filter(run=run, status=StepStatus.PENDING).count() == 2

    drain()

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert run.result["shout"] == [{"text": f"{i}:{w}"} for i, w in enumerate("ABCDE")]


def test_foreach_over_an_empty_list_succeeds_with_an_empty_list(make_workflow, operator, drain):
    workflow = make_workflow(
        "slug: empty\nsteps:\n  - id: each\n    foreach: '[]'\n    tool: noop\n"
    )
    run = start(workflow, operator)
    drain()
    run.refresh_from_db()
    assert (run.status, run.result) == (RunStatus.COMPLETED, {"each": []})


def test_repeat_runs_until_the_condition_holds(make_workflow, operator, drain):
    workflow = make_workflow(
        """
slug: poll
steps:
  - id: poll
    repeat: {until: "output >= 3", max: 10}
    tool: noop
    with: {value: "{{ iteration + 1 }}"}
    set: {polls: "{{ output }}"}
"""
    )
    run = start(workflow, operator)
    drain()
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert run.result == {"poll": 3}
    assert run.state == {"polls": 3}
    assert StepRun.objects.filter(run=run).count() == 3


def test_repeat_that_never_holds_fails_after_max(make_workflow, operator, drain):
    workflow = make_workflow(
        "slug: never\nsteps:\n  - id: p\n    repeat: {until: 'false', max: 3}\n    tool: noop\n"
    )
    run = start(workflow, operator)
    drain()
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.error == "step 'p' repeat: until not met after 3 iterations"


def test_sub_workflow_runs_as_a_child_and_the_parent_waits_for_it(make_workflow, operator, drain):
    make_workflow(
        """
slug: child
inputs: {x: {type: integer, required: true}}
steps:
  - id: double
    tool: noop
    with: {value: "{{ inputs.x * 2 }}"}
outputs: {doubled: "{{ steps.double.output }}"}
"""
    )
    parent = make_workflow(
        """
slug: parent
steps:
  - id: call
    workflow: child
    with: {x: 21}
  - id: after
    tool: noop
    with: {value: "{{ steps.call.output.doubled }}"}
"""
    )
    run = start(parent, operator)
    step_run = StepRun.objects.get(run=run)
    from workflows.engine.runner import step_run_execute

    step_run_execute(run_id=run.pk, step_run_id=step_run.pk)
    run.refresh_from_db()
    child = run.child_runs.get()
    assert run.status == RunStatus.WAITING
    assert child.parent_step_run_id == step_run.pk

    drain()

    run.refresh_from_db()
    child.refresh_from_db()
    assert child.status == RunStatus.COMPLETED
    assert run.status == RunStatus.COMPLETED
    assert run.result["after"] == 42


def test_cancelling_a_parent_cancels_its_waiting_step_and_child_run(make_workflow, operator, drain):
    make_workflow("slug: slow\nsteps:\n  - id: nap\n    tool: sleep\n    with: {seconds: 3600}\n")
    parent = make_workflow("slug: outer\nsteps:\n  - id: call\n    workflow: slow\n")
    run = start(parent, operator)
    drain()
    child = run.child_runs.get()
    child.refresh_from_db()
    assert child.status == RunStatus.WAITING

    run_cancel(run_id=run.pk)

    run.refresh_from_db()
    child.refresh_from_db()
    assert (run.status, child.status) == (RunStatus.CANCELLED, RunStatus.CANCELLED)
    assert not StepRun.objects.filter(status__in=["PENDING", "RUNNING", "WAITING"]).exists()
    with pytest.raises(Conflict):
        run_cancel(run_id=run.pk)


def test_template_reading_a_missing_key_fails_the_step_naming_step_and_field(
    make_workflow, operator, drain
):
    workflow = make_workflow(
        """
slug: broken
steps:
  - id: a
    tool: noop
    with: {value: {}}
  - id: b
    tool: noop
    with: {value: "{{ steps.a.output.missing }}"}
"""
    )
    run = start(workflow, operator)
    drain()
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("step 'b' with.value:")
    assert "missing" in run.error


def test_expression_that_raises_in_when_fails_the_run_cleanly(make_workflow, operator, drain):
    workflow = make_workflow(
        "slug: badwhen\nsteps:\n  - id: a\n    tool: noop\n"
        "  - id: b\n    when: '1 / 0'\n    tool: noop\n"
    )
    run = start(workflow, operator)
    drain()
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("step 'b' when:")
    assert not StepRun.objects.filter(run=run, status__in=["PENDING", "RUNNING"]).exists()


def test_failed_attempts_retry_per_policy_then_fail(make_workflow, operator, drain):
    workflow = make_workflow(
        """
slug: flaky
steps:
  - id: extract
    tool: json.extract
    with: {data: {}, path: nothing.here}
    retry: {max_attempts: 3, backoff_s: 0}
"""
    )
    run = start(workflow, operator)
    drain()
    run.refresh_from_db()
    attempts = list(
        StepRun.objects.filter(run=run).order_by("attempt").values_list("attempt", "status")
    )
    assert attempts == [(1, "FAILED"), (2, "FAILED"), (3, "FAILED")]
    assert run.status == RunStatus.FAILED
    assert "nothing at 'nothing.here'" in run.error


def test_retry_backoff_is_a_database_row_fired_by_the_sweep_when_due(make_workflow, operator):
    workflow = make_workflow(
        """
slug: backoff
steps:
  - id: extract
    tool: json.extract
    with: {data: {}, path: x}
    retry: {max_attempts: 2, backoff_s: 60}
"""
    )
    run = start(workflow, operator)
    from workflows.engine.runner import step_run_execute

    step_run_execute(run_id=run.pk, step_run_id=StepRun.objects.get(run=run).pk)
    retry = StepRun.objects.get(run=run, attempt=2)
    assert retry.status == StepStatus.PENDING and retry.dispatched_at is None
    assert retry.due_at > timezone.now() + timedelta(seconds=40)

    assert steps_dispatch_due() == 0
    StepRun.objects.filter(pk=retry.pk).update(due_at=timezone.now())
    assert steps_dispatch_due() == 1
    retry.refresh_from_db()
    assert retry.dispatched_at is not None


def test_sleep_parks_the_step_and_the_sweep_wakes_it(make_workflow, operator, drain):
    workflow = make_workflow(
        "slug: nap\nsteps:\n  - id: nap\n    tool: sleep\n    with: {seconds: 600}\n"
        "  - id: after\n    tool: noop\n"
    )
    run = start(workflow, operator)
    drain()
    run.refresh_from_db()
    assert run.status == RunStatus.WAITING
    assert steps_wake_due() == 0

    StepRun.objects.filter(run=run, step_id="nap").update(wake_at=timezone.now())
    drain()

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED


def test_state_set_by_a_step_is_visible_to_later_steps(make_workflow, operator, drain):
    workflow = make_workflow(
        """
slug: stateful
steps:
  - id: a
    tool: noop
    with: {value: 7}
    set: {lucky: "{{ output }}"}
  - id: b
    tool: noop
    with: {value: "{{ state.lucky + 1 }}"}
"""
    )
    run = start(workflow, operator)
    drain()
    run.refresh_from_db()
    assert run.state == {"lucky": 7}
    assert run.result["b"] == 8


def test_same_idempotency_key_returns_the_same_run(make_workflow, operator):
    workflow = make_workflow("slug: once\nsteps:\n  - id: a\n    tool: noop\n")
    first, created_first = run_start(
        workflow=workflow, inputs={}, started_by=operator, idempotency_key="k1"
    )
    again, created_again = run_start(
        workflow=workflow, inputs={}, started_by=operator, idempotency_key="k1"
    )
    assert (created_first, created_again) == (True, False)
    assert again.pk == first.pk
    assert workflow.runs.count() == 1


def test_same_idempotency_key_with_different_inputs_is_a_conflict(make_workflow, operator):
    workflow = make_workflow(
        "slug: keyed\ninputs: {n: {type: integer, default: 1}}\nsteps:\n  - id: a\n    tool: noop\n"
    )
    run_start(workflow=workflow, inputs={"n": 1}, started_by=operator, idempotency_key="k")
    with pytest.raises(Conflict, match="different inputs"):
        run_start(workflow=workflow, inputs={"n": 2}, started_by=operator, idempotency_key="k")
    assert workflow.runs.count() == 1


def test_paused_workflow_refuses_new_runs(make_workflow, operator):
    from workflows.services import workflow_set_paused

    workflow = workflow_set_paused(
        workflow=make_workflow("slug: p\nsteps:\n  - id: a\n    tool: noop\n"), paused=True
    )
    with pytest.raises(Conflict, match="paused"):
        start(workflow, operator)
    assert workflow.runs.count() == 0


def test_events_rebuild_the_timeline_in_order(make_workflow, operator, drain):
    workflow = make_workflow(
        "slug: t\nsteps:\n  - id: a\n    tool: noop\n  - id: b\n    tool: noop\n"
    )
    run = start(workflow, operator)
    drain()
    events = list(run.events.order_by("seq").values_list("seq", "type"))
    assert [seq for seq, _ in events] == list(range(1, len(events) + 1))
    assert [event_type for _, event_type in events] == [
        "run.created",
        "run.status",
        "step.queued",
        "run.status",
        "step.started",
        "step.succeeded",
        "step.completed",
        "step.queued",
        "step.started",
        "step.succeeded",
        "step.completed",
        "run.status",
    ]


def test_a_step_unblocked_by_a_skip_and_its_trigger_at_once_starts_once(
    make_workflow, operator, drain
):
    workflow = make_workflow(
        """
slug: skip-and-trigger
steps:
  - id: x
    tool: noop
  - id: a
    needs: [x]
    when: "false"
    tool: noop
  - id: c
    needs: [x, a]
    tool: noop
    with: {value: ran}
"""
    )
    run = start(workflow, operator)
    drain()
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert statuses(run) == {"x": "SUCCEEDED", "a": "SKIPPED", "c": "SUCCEEDED"}
    assert StepRun.objects.filter(run=run, step_id="c").count() == 1


@pytest.mark.parametrize(("tool", "transactions"), [("noop", 1), ("sleep", 2)])
def test_quick_pure_tools_run_in_the_claiming_transaction_others_under_a_lease(
    make_workflow, operator, tool, transactions
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from workflows.engine.runner import step_run_execute

    workflow = make_workflow(
        f"slug: t-{tool}\nsteps:\n  - id: a\n    tool: {tool}\n"
        + ("    with: {seconds: 60}\n" if tool == "sleep" else "")
    )
    run = start(workflow, operator)
    step_run = StepRun.objects.get(run=run)

    with CaptureQueriesContext(connection) as queries:
        step_run_execute(run_id=run.pk, step_run_id=step_run.pk)

    savepoints = [q for q in queries.captured_queries if q["sql"].startswith("SAVEPOINT")]
    assert len(savepoints) == transactions
    assert run.events.filter(type="step.started").count() == 1


def test_a_value_json_cannot_hold_fails_the_step_instead_of_hanging(make_workflow, operator, drain):
    workflow = make_workflow(
        "slug: odd\nsteps:\n  - id: a\n    tool: noop\n    with: {value: '{{ range(3) }}'}\n"
    )
    run = start(workflow, operator)
    drain()
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert run.error.startswith("step 'a' with: Object of type range is not JSON serializable")


def test_a_long_chain_after_a_false_gate_is_skipped_without_recursion(
    make_workflow, operator, drain
):
    import yaml

    steps = [{"id": "gate", "tool": "noop", "when": "false"}]
    steps += [{"id": f"s{i}", "tool": "noop"} for i in range(1200)]
    workflow = make_workflow(yaml.safe_dump({"slug": "long-skip", "steps": steps}))
    run = start(workflow, operator)
    drain()
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert RunStep.objects.filter(run=run, status=StepStatus.SKIPPED).count() == 1201


def test_sub_workflows_that_call_each_other_stop_at_the_nesting_limit(
    make_workflow, operator, drain
):
    from config.errors import InvalidInput
    from workflows.engine.runs import MAX_NESTING
    from workflows.models import Run, Workflow
    from workflows.services import workflow_version_publish
    from workflows.spec import spec_checksum, spec_parse

    pong = make_workflow("slug: pong\nsteps:\n  - id: a\n    tool: noop\n")
    ping = make_workflow("slug: ping\nsteps:\n  - id: call\n    workflow: pong\n")
    # Publishing refuses the cycle; two publishes racing could still close one, as this does.
    closing = "slug: pong\nsteps:\n  - id: call\n    workflow: ping\n"
    with pytest.raises(InvalidInput, match="closes a cycle: pong -> ping -> pong"):
        workflow_version_publish(workflow=pong, source=closing, published_by=operator)
    spec, canonical = spec_parse(closing)
    version = pong.versions.create(
        number=2,
        spec=canonical,
        source=closing,
        checksum=spec_checksum(canonical),
        published_by=operator,
    )
    Workflow.objects.filter(pk=pong.pk).update(current_version=version)
    run = start(ping, operator)
    drain()
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert Run.objects.count() == MAX_NESTING + 1
    deepest = Run.objects.get(ctx__depth=MAX_NESTING)
    assert "nest deeper than" in deepest.error


def test_a_sub_workflow_the_author_may_not_run_is_unknown_at_publish_and_at_run_time(
    make_user, make_workflow, operator, drain
):
    from guardian.shortcuts import assign_perm, remove_perm

    from config.errors import InvalidInput

    make_workflow("slug: secret\nsteps:\n  - id: s\n    tool: noop\n    with: {value: 42}\n")
    outsider = make_user("service")
    with pytest.raises(InvalidInput) as caught:
        make_workflow("slug: thief\nsteps:\n  - id: grab\n    workflow: secret\n", owner=outsider)
    assert caught.value.details == {"steps[0].workflow": ["unknown workflow 'secret'"]}

    from workflows.models import Workflow

    secret = Workflow.objects.get(slug="secret")
    for permission in ("view_workflow", "run_workflow"):
        assign_perm(permission, outsider, secret)
    thief = make_workflow(
        "slug: thief\nsteps:\n  - id: grab\n    workflow: secret\n", owner=outsider
    )
    remove_perm("run_workflow", outsider, secret)
    run = start(thief, outsider)
    drain()
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "unknown workflow 'secret'" in run.error
    assert not run.child_runs.exists()


def test_a_big_plan_is_published_by_a_worker_from_one_message(
    make_workflow, operator, django_capture_on_commit_callbacks, monkeypatch
):
    from celery import current_app

    from workflows.engine.dispatch import DISPATCH_HERE_MAX, DISPATCH_TASK, dispatch_all

    sent = []
    monkeypatch.setattr(current_app, "send_task", lambda name, args, **_: sent.append((name, args)))
    roots = "".join(f"  - {{id: s{n}, needs: [], tool: noop}}\n" for n in range(150))
    workflow = make_workflow(f"slug: big-plan\nsteps:\n{roots}")
    assert DISPATCH_HERE_MAX < 150

    with django_capture_on_commit_callbacks(execute=True):
        run = start(workflow, operator)

    [(task, (messages,))] = sent  # the caller published one message, not 150
    assert task == DISPATCH_TASK
    assert sorted(step_run_id for _, step_run_id, _ in messages) == sorted(
        StepRun.objects.filter(run=run).values_list("pk", flat=True)
    )
    sent.clear()
    dispatch_all(messages)  # what the worker's task does
    assert len(sent) == 150


def test_an_inline_step_past_its_timeout_fails_with_timeout(make_workflow, operator, drain):
    workflow = make_workflow(
        """
slug: slow-inline
steps:
  - id: busy
    tool: template.render
    timeout_s: 0.001
    with: {template: "{% for i in range(20000) %}x{% endfor %}"}
"""
    )
    run = start(workflow, operator)

    drain()

    run.refresh_from_db()
    busy = StepRun.objects.get(run=run, step_id="busy")
    assert run.status == RunStatus.FAILED
    assert (busy.status, busy.error_code) == (StepStatus.FAILED, "timeout")
    assert "timed out after 0.001s" in busy.error
