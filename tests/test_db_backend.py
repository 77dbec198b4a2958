"""config.db: PostgreSQL whose transactions begin with their first statement."""

import pytest
from django.db import DataError, connection, transaction
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
