import itertools

import pytest

from config.errors import Conflict
from workflows.engine.runs import run_start
from workflows.engine.transitions import run_transition, step_run_transition
from workflows.engine.unit import run_unit, step_unit
from workflows.models import (
    RUN_TRANSITIONS,
    STEP_RUN_TRANSITIONS,
    Run,
    RunEvent,
    RunStatus,
    StepRun,
    StepStatus,
)

ONE_STEP = "slug: one\nsteps:\n  - id: a\n    tool: noop\n"
ALL_PAIRS = list(itertools.product(RunStatus.values, RunStatus.values))


def _run_in(status, workflow, user) -> Run:
    return Run.objects.create(
        workflow=workflow, version=workflow.current_version, status=status, started_by=user
    )


@pytest.mark.django_db
@pytest.mark.parametrize(("source", "target"), ALL_PAIRS)
def test_only_the_table_s_transitions_are_allowed(source, target, make_workflow, operator):
    workflow = make_workflow(ONE_STEP)
    run = _run_in(source, workflow, operator)
    allowed = target in RUN_TRANSITIONS[source]

    with run_unit(run.pk) as locked:
        if allowed:
            run_transition(locked, target)
        else:
            with pytest.raises(Conflict) as caught:
                run_transition(locked, target)
            assert caught.value.details == {"status": source, "requested": target}

    run.refresh_from_db()
    events = list(RunEvent.objects.filter(run=run).values_list("type", "payload"))
    if allowed:
        assert run.status == target
        assert events == [("run.status", {"from": source, "to": target})]
    else:
        assert run.status == source
        assert events == []


@pytest.mark.django_db
def test_terminal_transition_stamps_finished_at(make_workflow, operator):
    run = _run_in(RunStatus.RUNNING, make_workflow(ONE_STEP), operator)
    with run_unit(run.pk) as locked:
        run_transition(locked, RunStatus.FAILED, reason="boom")
    run.refresh_from_db()
    assert run.finished_at is not None
    assert run.events.get().payload == {"from": "RUNNING", "to": "FAILED", "reason": "boom"}


STEP_PAIRS = list(itertools.product(StepStatus.values, StepStatus.values))


@pytest.mark.django_db
@pytest.mark.parametrize(("source", "target"), STEP_PAIRS)
def test_a_step_run_moves_only_along_its_table_and_each_move_is_an_event(
    source, target, make_workflow, operator
):
    run, _ = run_start(workflow=make_workflow(ONE_STEP), inputs={}, started_by=operator)
    step_run = StepRun.objects.get(run=run)
    StepRun.objects.filter(pk=step_run.pk).update(status=source)  # the state under test
    events_before = run.events.count()
    allowed = target in STEP_RUN_TRANSITIONS[source]

    with step_unit(run.pk, step_run.pk, lock_run=True) as (unit, locked):
        if allowed:
            step_run_transition(unit, locked, target)
        else:
            with pytest.raises(Conflict) as caught:
                step_run_transition(unit, locked, target)
            assert caught.value.details == {"status": source, "requested": target}

    step_run.refresh_from_db()
    new_events = list(run.events.filter(seq__gt=events_before).values_list("type", flat=True))
    if allowed:
        assert step_run.status == target
        name = "started" if target == StepStatus.RUNNING else target.lower()
        assert new_events == [f"step.{name}"]
    else:
        assert step_run.status == source
        assert new_events == []
