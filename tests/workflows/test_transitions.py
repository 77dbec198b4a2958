import itertools

import pytest

from config.errors import Conflict
from workflows.engine.transitions import run_transition
from workflows.engine.unit import run_unit
from workflows.models import RUN_TRANSITIONS, Run, RunEvent, RunStatus

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
