"""config.db: PostgreSQL whose transactions begin with their first statement."""

import pytest
from django.db import DataError, connection, transaction
from django.db.transaction import TransactionManagementError
from django.test.utils import CaptureQueriesContext
from psycopg.pq import TransactionStatus

from workflows.models import Workflow

pytestmark = pytest.mark.django_db(transaction=True)


def _server_status():
    return connection.connection.info.transaction_status


def test_the_server_transaction_opens_with_the_first_statement_and_ends_with_the_block():
    with transaction.atomic():
        # psycopg stays in autocommit mode, so it never sends a BEGIN of its own
        assert connection.connection.autocommit is True
        assert _server_status() == TransactionStatus.IDLE
        assert Workflow.objects.count() == 0
        assert _server_status() == TransactionStatus.INTRANS
    assert _server_status() == TransactionStatus.IDLE


def test_a_block_that_raises_rolls_back_what_it_wrote(operator):
    with pytest.raises(RuntimeError), transaction.atomic():
        Workflow.objects.create(slug="gone", name="gone", owner=operator)
        raise RuntimeError
    assert not Workflow.objects.filter(slug="gone").exists()
    assert _server_status() == TransactionStatus.IDLE


def test_savepoints_roll_back_alone(operator):
    with transaction.atomic():
        Workflow.objects.create(slug="kept", name="kept", owner=operator)
        with pytest.raises(RuntimeError), transaction.atomic():
            Workflow.objects.create(slug="dropped", name="dropped", owner=operator)
            raise RuntimeError
    assert set(Workflow.objects.values_list("slug", flat=True)) == {"kept"}


def test_a_server_side_cursor_can_open_the_transaction(operator):
    Workflow.objects.create(slug="listed", name="listed", owner=operator)
    with transaction.atomic():
        slugs = [workflow.slug for workflow in Workflow.objects.iterator(chunk_size=10)]
        assert _server_status() == TransactionStatus.INTRANS
    assert slugs == ["listed"]


def test_outside_a_block_each_statement_commits_on_its_own(operator):
    Workflow.objects.create(slug="alone", name="alone", owner=operator)
    assert _server_status() == TransactionStatus.IDLE
    assert Workflow.objects.filter(slug="alone").exists()


def test_a_first_statement_refused_before_it_ran_leaves_the_transaction_to_the_next(operator):
    # A NUL byte is refused by psycopg before anything is sent, BEGIN included.
    with pytest.raises(RuntimeError), transaction.atomic():
        with pytest.raises(DataError), connection.cursor() as cursor:
            cursor.execute("SELECT %s::text", ["a\x00b"])
        Workflow.objects.create(slug="after", name="after", owner=operator)
        assert _server_status() == TransactionStatus.INTRANS
        raise RuntimeError
    assert not Workflow.objects.filter(slug="after").exists()


def test_a_manual_transaction_goes_on_after_a_commit(operator):
    transaction.set_autocommit(False)
    try:
        Workflow.objects.create(slug="first", name="first", owner=operator)
        transaction.commit()
        Workflow.objects.create(slug="second", name="second", owner=operator)
        transaction.rollback()
    finally:
        transaction.set_autocommit(True)
    assert set(Workflow.objects.values_list("slug", flat=True)) == {"first"}


# execute_and_commit: a statement that carries the COMMIT of its block


def _count_in_same_round_trip_as_commit(cursor) -> bool:
    return connection.execute_and_commit(cursor, "SELECT count(*) FROM workflows_workflow", [])


def test_a_statement_can_carry_the_commit_of_the_outermost_block(operator):
    hooks = []
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        Workflow.objects.create(slug="carried", name="carried", owner=operator)
        transaction.on_commit(lambda: hooks.append("ran"))
        with connection.cursor() as cursor:
            committed = _count_in_same_round_trip_as_commit(cursor)
            assert cursor.fetchone() == (1,)  # the statement's own result, not the COMMIT's
        assert committed
        assert _server_status() == TransactionStatus.IDLE
        assert hooks == []  # on_commit hooks still wait for the block's end

    assert hooks == ["ran"]
    sent = [query["sql"] for query in queries.captured_queries]
    assert sent[-1].endswith(";\nCOMMIT")
    assert "COMMIT" not in sent  # the block's own commit sent nothing more
    assert Workflow.objects.filter(slug="carried").exists()


def test_no_statement_may_follow_the_carried_commit(operator):
    with pytest.raises(TransactionManagementError), transaction.atomic():
        Workflow.objects.create(slug="committed", name="committed", owner=operator)
        with connection.cursor() as cursor:
            _count_in_same_round_trip_as_commit(cursor)
        Workflow.objects.create(slug="refused", name="refused", owner=operator)
    assert set(Workflow.objects.values_list("slug", flat=True)) == {"committed"}
    assert Workflow.objects.count() == 1  # and the connection works as before afterwards


def test_inside_a_nested_block_the_statement_does_not_commit(operator):
    with pytest.raises(RuntimeError), transaction.atomic():
        Workflow.objects.create(slug="outer", name="outer", owner=operator)
        with transaction.atomic(), connection.cursor() as cursor:
            assert not _count_in_same_round_trip_as_commit(cursor)
            assert cursor.fetchone() == (1,)
        assert _server_status() == TransactionStatus.INTRANS
        raise RuntimeError
    assert not Workflow.objects.exists()


def test_a_carried_commit_that_fails_rolls_the_block_back(operator):
    with pytest.raises(DataError), transaction.atomic():
        Workflow.objects.create(slug="lost", name="lost", owner=operator)
        with connection.cursor() as cursor:
            connection.execute_and_commit(cursor, "SELECT 1 / 0", [])
    assert _server_status() == TransactionStatus.IDLE
    assert not Workflow.objects.filter(slug="lost").exists()
