"""A step delivery locks its run late (engine/locks.py): races with that lock, on real PostgreSQL.

Each delivery runs in a thread of this process with its own database connection; no worker.
"""

import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.workflows.test_durability import step_run_of
from workflows.engine import runner
from workflows.engine.runs import run_cancel, run_start
from workflows.models import Run, RunStatus, RunStep, StepRun, StepStatus

pytestmark = pytest.mark.django_db(transaction=True)

HANG_GUARD_S = 10

ONE_STEP = """
slug: one-step
steps:
  - id: only
    tool: noop
"""

TWO_ROOTS = """
slug: two-roots-only
steps:
  - id: left
    needs: []
    tool: noop
  - id: right
    needs: []
    tool: noop
"""

TWO_IN_A_CHAIN = """
slug: two-in-a-chain
steps:
  - id: first
    tool: noop
  - id: second
    tool: noop
"""

TWO_ROOTS_AND_A_JOIN = TWO_ROOTS.replace("two-roots-only", "two-roots") + (
    "  - id: join\n    needs: [left, right]\n    tool: noop\n"
)


class Delivery:
    """`step_run_execute` of one step run in a thread with its own database connection."""

    def __init__(self, run: Run, step_run: StepRun):
        self.result = None
        self.error = None
        self.thread = threading.Thread(target=self._execute, args=(run.pk, step_run.pk))

    def _execute(self, run_id, step_run_id):
        try:
            self.result = runner.step_run_execute(
                run_id=run_id, step_run_id=step_run_id, worker="t"
            )
        except BaseException as exc:  # re-raised in the test's thread by finish()
            self.error = exc
        finally:
            connection.close()

    def start(self) -> "Delivery":
        self.thread.start()
        return self

    def finish(self) -> str:
        self.thread.join(timeout=HANG_GUARD_S * 2)
        assert not self.thread.is_alive(), "the delivery did not finish"
        if self.error is not None:
            raise self.error
        return self.result


def assert_events_dense(run: Run) -> list[str]:
    """The run's events are numbered 1..n without gaps or repeats, and event_seq is n."""
    run.refresh_from_db()
    events = list(run.events.order_by("seq").values_list("seq", "type"))
    assert [seq for seq, _ in events] == list(range(1, len(events) + 1))
    assert run.event_seq == len(events)
    return [kind for _, kind in events]


def test_a_run_cancelled_while_its_step_executes_cancels_that_step_and_drops_its_result(
    make_workflow, operator, monkeypatch
):
    run, _ = run_start(workflow=make_workflow(ONE_STEP), inputs={}, started_by=operator)
    step_run = step_run_of(run, "only")
    inside, go = threading.Event(), threading.Event()
    released_by_test = []
    perform = runner._perform

    def perform_paused(claim):
        # Inline (pure) step: this runs in the claiming transaction, with the step run locked
        # and the run read but not locked yet.
        inside.set()
        released_by_test.append(go.wait(timeout=HANG_GUARD_S))
        return perform(claim)

    monkeypatch.setattr(runner, "_perform", perform_paused)

    delivery = Delivery(run, step_run).start()
    assert inside.wait(timeout=HANG_GUARD_S), "the delivery never reached the step's work"
    run_cancel(run_id=run.pk)
    # Had the cancel waited for the step run the delivery holds, it would have returned only
    # after the delivery gave up waiting for `go` and committed.
    cancel_returned_while_step_held = delivery.thread.is_alive() and not go.is_set()
    go.set()
    result = delivery.finish()

    assert cancel_returned_while_step_held
    assert released_by_test == [True]
    assert result == "skipped"
    run.refresh_from_db()
    step_run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert step_run.status == StepStatus.CANCELLED
    assert step_run.output is None
    assert RunStep.objects.get(run=run, step_id="only").status == StepStatus.CANCELLED
    assert (run.progress_done, run.steps_busy) == (0, 0)
    kinds = assert_events_dense(run)
    assert "step.succeeded" not in kinds
    assert kinds.count("step.cancelled") == 1  # by the delivery: run_abort skipped the step run


def test_two_steps_of_one_run_recorded_concurrently_both_count(
    make_workflow, operator, monkeypatch
):
    run, _ = run_start(workflow=make_workflow(TWO_ROOTS_AND_A_JOIN), inputs={}, started_by=operator)
    roots = [step_run_of(run, "left"), step_run_of(run, "right")]
    both_inside = threading.Barrier(2, timeout=HANG_GUARD_S)
    perform = runner._perform

    def perform_together(claim):
        # Both roots are in their claiming transactions, neither holding the run's lock.
        if claim.step.id in ("left", "right"):
            both_inside.wait()
        return perform(claim)

    monkeypatch.setattr(runner, "_perform", perform_together)

    deliveries = [Delivery(run, step_run).start() for step_run in roots]
    results = [delivery.finish() for delivery in deliveries]
    join = step_run_of(run, "join")
    assert join is not None, "neither root started the join"
    join_result = runner.step_run_execute(run_id=run.pk, step_run_id=join.pk, worker="t")

    assert results == ["succeeded", "succeeded"]
    assert join_result == "succeeded"
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert run.progress_done == 3
    assert run.steps_busy == 0
    assert RunStep.objects.filter(run=run, step_id="join").count() == 1
    assert StepRun.objects.filter(run=run, step_id="join").count() == 1
    kinds = assert_events_dense(run)
    assert kinds.count("step.succeeded") == 3


def test_a_delivery_for_an_ended_run_cancels_its_pending_step_run(make_workflow, operator):
    run, _ = run_start(workflow=make_workflow(ONE_STEP), inputs={}, started_by=operator)
    step_run = step_run_of(run, "only")
    run_cancel(run_id=run.pk)
    # As if run_abort had skipped the step run because a delivery held it at the time.
    StepRun.objects.filter(pk=step_run.pk).update(
        status=StepStatus.PENDING, finished_at=None, lease_until=None
    )
    run.refresh_from_db()
    seq_before = run.event_seq

    result = runner.step_run_execute(run_id=run.pk, step_run_id=step_run.pk, worker="t")

    assert result == "skipped"
    step_run.refresh_from_db()
    assert step_run.status == StepStatus.CANCELLED
    assert step_run.finished_at is not None
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert run.steps_busy == 0
    assert_events_dense(run)
    last = run.events.get(seq=seq_before + 1)
    assert last.type == "step.cancelled"
    assert last.payload == {"step": "only", "iteration": 0, "attempt": 1}
    assert run.event_seq == seq_before + 1


def test_a_cancel_holding_the_run_does_not_deadlock_with_a_step_finishing(make_workflow, operator):
    # given: a cancel holds the run's lock while a delivery of one of its steps finishes (it
    # writes its step's rows, then waits for the run's lock to write its counters)
    workflow = make_workflow(TWO_ROOTS_AND_A_JOIN)
    run, _ = run_start(workflow=workflow, inputs={}, started_by=operator)
    left = StepRun.objects.get(run=run, step_id="left")
    holding, outcomes = threading.Event(), {}

    def cancel():
        from workflows.engine.locks import run_locked
        from workflows.engine.progress import run_abort

        try:
            with run_locked(run.pk) as locked:
                holding.set()
                deliver.join(1.0)  # long enough for the delivery to reach the run's lock
                run_abort(locked, RunStatus.CANCELLED, reason="stop")
            outcomes["cancel"] = "done"
        except Exception as exc:  # reported by the assertions
            outcomes["cancel"] = repr(exc)
        finally:
            connection.close()

    def delivery():
        try:
            holding.wait(HANG_GUARD_S)
            outcomes["delivery"] = runner.step_run_execute(
                run_id=run.pk, step_run_id=left.pk, worker="t"
            )
        except Exception as exc:  # reported by the assertions
            outcomes["delivery"] = repr(exc)
        finally:
            connection.close()

    # when
    deliver = threading.Thread(target=delivery)
    canceller = threading.Thread(target=cancel)
    deliver.start()
    canceller.start()
    canceller.join(HANG_GUARD_S)
    deliver.join(HANG_GUARD_S)

    # then: both finish, the cancel wins, and the step it could not touch is cancelled too
    assert outcomes == {"cancel": "done", "delivery": "skipped"}
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert set(StepRun.objects.filter(run=run).values_list("status", flat=True)) == {
        StepStatus.CANCELLED
    }
    assert set(RunStep.objects.filter(run=run).values_list("status", flat=True)) == {
        StepStatus.CANCELLED
    }
    assert_events_dense(run)


def test_a_step_that_leaves_its_run_as_it_is_commits_with_its_write(make_workflow, operator):
    run, _ = run_start(workflow=make_workflow(TWO_IN_A_CHAIN), inputs={}, started_by=operator)
    first = step_run_of(run, "first")

    with CaptureQueriesContext(connection) as queries:
        result = runner.step_run_execute(run_id=run.pk, step_run_id=first.pk, worker="t")

    # then: two round trips, the read (with BEGIN) and the writes (with COMMIT)
    assert result == "succeeded"
    # (Django logs a "BEGIN" when the block opens; config.db sends it with the first statement)
    sent = [query["sql"] for query in queries.captured_queries if query["sql"] != "BEGIN"]
    assert len(sent) == 2, sent
    assert sent[0].startswith("BEGIN;")
    assert sent[1].endswith(";\nCOMMIT")
    run.refresh_from_db()
    assert (run.status, run.progress_done, run.steps_busy) == (RunStatus.RUNNING, 1, 1)
    assert step_run_of(run, "second").status == StepStatus.PENDING
    assert_events_dense(run)


def test_a_step_whose_counts_went_stale_finishes_the_run_after_all(
    make_workflow, operator, monkeypatch
):
    # given: "left" read its run (no step done of two), and "right" then finished
    run, _ = run_start(workflow=make_workflow(TWO_ROOTS), inputs={}, started_by=operator)
    left, right = step_run_of(run, "left"), step_run_of(run, "right")
    inside, go = threading.Event(), threading.Event()
    performed = []
    perform = runner._perform

    def perform_paused(claim):
        performed.append(claim.step.id)
        if claim.step.id == "left" and not go.is_set():
            inside.set()
            go.wait(timeout=HANG_GUARD_S)
        return perform(claim)

    monkeypatch.setattr(runner, "_perform", perform_paused)
    delivery = Delivery(run, left).start()
    assert inside.wait(timeout=HANG_GUARD_S), "the delivery never reached the step's work"
    assert runner.step_run_execute(run_id=run.pk, step_run_id=right.pk, worker="t") == "succeeded"

    # when: "left" records, judging from its read that the run goes on
    go.set()
    result = delivery.finish()

    # then: its write found the run's counts changed, rolled back, and the step ran again with
    # the run locked, which completed the run (without the check it would stay RUNNING)
    assert result == "succeeded"
    assert performed.count("left") == 2
    run.refresh_from_db()
    assert (run.status, run.progress_done, run.steps_busy) == (RunStatus.COMPLETED, 2, 0)
    kinds = assert_events_dense(run)
    assert kinds.count("step.succeeded") == 2
    assert run.events.filter(type="run.status", payload__to=RunStatus.COMPLETED).count() == 1


def test_a_run_locked_block_that_ends_its_transaction_commits_with_its_last_write(
    make_workflow, operator
):
    run, _ = run_start(workflow=make_workflow(TWO_IN_A_CHAIN), inputs={}, started_by=operator)

    with CaptureQueriesContext(connection) as queries:
        run_cancel(run_id=run.pk)

    sent = [query["sql"] for query in queries.captured_queries if query["sql"] != "BEGIN"]
    assert sent[-1].endswith(";\nCOMMIT")
    assert "COMMIT" not in sent
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert "run.status" in assert_events_dense(run)
