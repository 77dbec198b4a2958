"""Write-behind of the engine's rows (engine.rows) and the run's `steps_busy` counter."""

import importlib
import re
import threading
import uuid

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from workflows.engine.rows import ID_BLOCK, row_insert, row_update, rows_deferred
from workflows.engine.runs import run_cancel, run_start
from workflows.models import Run, RunEvent, RunStatus, StepRun, StepStatus

pytestmark = pytest.mark.django_db

SEQ = 1000  # far above the events run_start numbers, so test events never collide with them


class Boom(Exception):
    pass


@pytest.fixture
def run(make_workflow, operator) -> Run:
    workflow = make_workflow("slug: rows\nsteps:\n  - id: a\n    tool: noop\n")
    started, _ = run_start(workflow=workflow, inputs={}, started_by=operator)
    return Run.objects.get(pk=started.pk)


def _event(run: Run, seq: int) -> RunEvent:
    return RunEvent(run=run, seq=seq, type="test", payload={"n": seq}, at=timezone.now())


def _writes(queries: CaptureQueriesContext) -> list[str]:
    """The SQL sent that wrote rows: any statement in it that inserts or updates."""
    writes = re.compile(r"(^|;)\s*(INSERT\b|UPDATE\b)")
    return [query["sql"] for query in queries.captured_queries if writes.search(query["sql"])]


def _test_events(run: Run) -> dict[int, dict]:
    return dict(RunEvent.objects.filter(run=run, seq__gte=SEQ).values_list("seq", "payload"))


# Deferred writes


def test_deferred_writes_send_nothing_until_a_read_which_carries_them_in_one_statement(run):
    with transaction.atomic(), rows_deferred():
        # given
        with CaptureQueriesContext(connection) as buffering:
            row_insert(_event(run, SEQ), _event(run, SEQ + 1))
            run.error = "deferred"
            row_update(run, ["error"])
        # when
        with CaptureQueriesContext(connection) as reading:
            seen = Run.objects.get(pk=run.pk)
            events = _test_events(run)

    # then: nothing was written by the calls themselves (an id block may have been fetched)
    assert _writes(buffering) == []
    # the first read saw every write, and the writes rode in its statement
    assert seen.error == "deferred"
    assert events == {SEQ: {"n": SEQ}, SEQ + 1: {"n": SEQ + 1}}
    carrier = reading.captured_queries[0]["sql"]
    assert _writes(reading) == [carrier]
    assert f'INSERT INTO "{RunEvent._meta.db_table}"' in carrier
    assert f'UPDATE "{Run._meta.db_table}"' in carrier
    assert re.search(rf';\s*SELECT\b.*\bFROM "{Run._meta.db_table}"', carrier, re.S)  # the read


def test_deferred_writes_with_no_read_after_them_leave_together_at_the_end_of_the_block(run):
    with transaction.atomic():
        with CaptureQueriesContext(connection) as queries, rows_deferred():
            row_insert(_event(run, SEQ))
            run.error = "at the end"
            row_update(run, ["error"])
            assert _writes(queries) == []

        assert len(_writes(queries)) == 1
        assert Run.objects.get(pk=run.pk).error == "at the end"
        assert _test_events(run) == {SEQ: {"n": SEQ}}


def test_a_server_side_cursor_read_sees_the_pending_writes(run):
    with transaction.atomic(), rows_deferred():
        row_insert(*(_event(run, SEQ + i) for i in range(3)))
        seqs = [
            event.seq
            for event in RunEvent.objects.filter(run=run, seq__gte=SEQ).iterator(chunk_size=2)
        ]
    assert seqs == [SEQ, SEQ + 1, SEQ + 2]


def test_a_statement_carrying_the_batch_gets_its_own_result_back(run):
    with transaction.atomic(), rows_deferred():
        row_insert(*(_event(run, SEQ + i) for i in range(3)))
        run.error = "pending"
        row_update(run, ["error"])
        # an UPDATE carrying the batch counts its own rows, which include the pending inserts
        assert RunEvent.objects.filter(run=run, seq__gte=SEQ).update(type="renamed") == 3
        row_update(run, ["error"])
        assert Run.objects.filter(pk=uuid.uuid4()).update(error="nobody") == 0
        # an ORM INSERT carrying the batch gets back its own id, not one of the batch's
        row_insert(_event(run, SEQ + 3))
        created = RunEvent.objects.create(run=run, seq=SEQ + 4, type="orm", at=timezone.now())

    assert RunEvent.objects.get(pk=created.pk).seq == SEQ + 4
    assert set(RunEvent.objects.filter(run=run, seq__gte=SEQ).values_list("type", flat=True)) == {
        "renamed",
        "test",
        "orm",
    }


def test_a_statement_with_named_parameters_goes_after_the_batch(run):
    with transaction.atomic(), rows_deferred():
        run.error = "pending"
        row_update(run, ["error"])
        with connection.cursor() as cursor:
            cursor.execute("SELECT %(n)s::int", {"n": 7})
            assert cursor.fetchone() == (7,)
    assert Run.objects.get(pk=run.pk).error == "pending"


def test_row_update_writes_the_values_at_the_call_not_later_changes_of_the_instance(run):
    with transaction.atomic(), rows_deferred():
        run.error = "at the call"
        row_update(run, ["error"])
        run.error = "changed afterwards, never saved"
    assert Run.objects.get(pk=run.pk).error == "at the call"


# Ids of inserted rows


def test_inserted_rows_get_unique_ids_at_once_and_a_later_update_in_the_batch_lands(run):
    events = [_event(run, SEQ + i) for i in range(2 * ID_BLOCK + 5)]  # spans id blocks
    with transaction.atomic(), rows_deferred():
        # when
        row_insert(*events)
        ids = [event.pk for event in events]
        # then, before anything is read
        assert None not in ids
        assert len(set(ids)) == len(ids)
        assert all(not event._state.adding and event._state.db == "default" for event in events)
        # when: the last row, still waiting in the batch, is updated
        last = events[-1]
        last.payload = {"updated": True}
        row_update(last, ["payload"])
        # an ORM insert meanwhile takes its id from the same sequence, without a collision
        orm_made = RunEvent.objects.create(run=run, seq=SEQ - 1, type="orm", at=timezone.now())

    stored = dict(RunEvent.objects.filter(run=run, seq__gte=SEQ).values_list("pk", "payload"))
    assert set(stored) == set(ids)
    assert stored[last.pk] == {"updated": True}
    assert stored[events[0].pk] == {"n": SEQ}
    assert orm_made.pk not in ids


# Exceptions and savepoints


def test_an_exception_in_the_block_drops_the_pending_writes_without_sending_them(run):
    with (
        CaptureQueriesContext(connection) as queries,
        pytest.raises(Boom),
        transaction.atomic(),
        rows_deferred(),
    ):
        row_insert(_event(run, SEQ))
        run.error = "never written"
        row_update(run, ["error"])
        raise Boom

    assert _writes(queries) == []
    assert Run.objects.get(pk=run.pk).error == ""
    assert _test_events(run) == {}


def test_writes_in_a_rolled_back_savepoint_roll_back_and_the_batch_keeps_the_others(run):
    state_before = run.state
    with transaction.atomic(), rows_deferred():
        run.error = "before the savepoint"
        row_update(run, ["error"])
        with pytest.raises(Boom), transaction.atomic():
            with CaptureQueriesContext(connection) as inside:
                run.state = {"rolled": "back"}
                row_update(run, ["state"])
                row_insert(_event(run, SEQ))
            raise Boom
        with CaptureQueriesContext(connection) as after:
            row_insert(_event(run, SEQ + 1))

    # inside the savepoint the writes went out at once, and rolled back with it
    assert len(_writes(inside)) == 2
    # after it, writes waited in the batch again
    assert _writes(after) == []
    stored = Run.objects.get(pk=run.pk)
    assert stored.error == "before the savepoint"
    assert stored.state == state_before
    assert _test_events(run) == {SEQ + 1: {"n": SEQ + 1}}


def test_outside_a_deferred_block_writes_go_straight_to_the_database(run):
    event = _event(run, SEQ)
    with CaptureQueriesContext(connection) as queries:
        run.error = "at once"
        row_update(run, ["error"])
        row_insert(event)

    assert len(_writes(queries)) == 2
    assert event.pk is not None and not event._state.adding
    assert Run.objects.get(pk=run.pk).error == "at once"
    assert RunEvent.objects.filter(pk=event.pk, seq=SEQ).exists()


# Run.steps_busy


def _start(workflow, operator) -> Run:
    run, _ = run_start(workflow=workflow, inputs={}, started_by=operator)
    return Run.objects.get(pk=run.pk)


def _busy(run: Run) -> int:
    """What steps_busy stands for, counted."""
    return StepRun.objects.filter(
        run=run, status__in=[StepStatus.PENDING, StepStatus.RUNNING]
    ).count()


def test_steps_busy_counts_the_queued_roots_of_a_new_run_and_drops_to_zero_on_cancel(
    make_workflow, operator
):
    workflow = make_workflow(
        "slug: three\nsteps:\n  - id: a\n    tool: noop\n"
        "  - id: b\n    needs: []\n    tool: noop\n  - id: c\n    needs: []\n    tool: noop\n"
    )
    run = _start(workflow, operator)
    assert run.steps_busy == _busy(run) == 3

    run_cancel(run_id=run.pk)

    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert run.steps_busy == _busy(run) == 0


def test_steps_busy_is_zero_once_parallel_steps_complete(make_workflow, operator, drain):
    workflow = make_workflow(
        "slug: pair\nsteps:\n  - id: a\n    tool: noop\n  - id: b\n    needs: []\n    tool: noop\n"
    )
    run = _start(workflow, operator)
    assert run.steps_busy == 2

    drain()

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert run.steps_busy == _busy(run) == 0


def test_a_run_whose_only_live_step_sleeps_waits_with_no_busy_steps(make_workflow, operator, drain):
    workflow = make_workflow(
        """
slug: nap-beside
steps:
  - id: nap
    tool: sleep
    with: {seconds: 600}
  - id: quick
    needs: []
    tool: noop
  - id: after
    needs: [nap, quick]
    tool: noop
"""
    )
    run = _start(workflow, operator)
    assert run.steps_busy == 2

    drain()

    run.refresh_from_db()
    assert StepRun.objects.get(run=run, step_id="nap").status == StepStatus.WAITING
    assert run.status == RunStatus.WAITING
    assert run.steps_busy == _busy(run) == 0

    StepRun.objects.filter(run=run, step_id="nap").update(wake_at=timezone.now())
    drain()

    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert run.steps_busy == _busy(run) == 0


@pytest.mark.django_db(transaction=True)
def test_each_thread_defers_into_its_own_batch(run):
    # given: thread A opens its batch first, thread B opens one after it (the newest)
    a_opened, b_opened, a_wrote = threading.Event(), threading.Event(), threading.Event()
    errors = []

    def thread_a():
        try:
            with transaction.atomic(), rows_deferred():
                a_opened.set()
                b_opened.wait(10)
                run.error = "written by A, then rolled back"
                row_update(run, ["error"])
                a_wrote.set()
                raise Boom()
        except Boom:
            pass
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    def thread_b():
        try:
            a_opened.wait(10)
            with transaction.atomic(), rows_deferred():
                b_opened.set()
                a_wrote.wait(10)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    # when: A writes while B's batch is open, then A rolls back and B commits
    threads = [threading.Thread(target=thread_a), threading.Thread(target=thread_b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)

    # then: A's write went out with A's transaction only
    assert errors == []
    assert Run.objects.get(pk=run.pk).error == ""


def test_the_steps_busy_migration_counts_the_pending_and_running_step_runs(make_workflow, operator):
    from django.apps import apps

    migration = importlib.import_module("workflows.migrations.0003_run_steps_busy")
    workflow = make_workflow(
        "slug: three\nsteps:\n  - id: a\n    tool: noop\n"
        "  - id: b\n    needs: []\n    tool: noop\n  - id: c\n    needs: []\n    tool: noop\n"
    )
    run, _ = run_start(workflow=workflow, inputs={}, started_by=operator)
    StepRun.objects.filter(run=run, step_id="b").update(status=StepStatus.SUCCEEDED)
    Run.objects.filter(pk=run.pk).update(steps_busy=0)  # as the new column starts

    migration.count_busy_steps(apps, None)

    assert Run.objects.get(pk=run.pk).steps_busy == 2
