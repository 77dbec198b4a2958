"""The transactional tests' flush survives a deadlock with another process reading two tables in
one transaction (tests/conftest.py tries it again), as a live worker's sweep may."""

import threading
import time

import psycopg
import pytest
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_flush_that_deadlocks_with_a_reader_is_tried_again(settings):
    # given: a reader holding the last table the flush truncates, which will then read the first
    db = settings.DATABASES["default"]
    reader = psycopg.connect(
        host=db["HOST"], port=db["PORT"] or 5432, user=db["USER"], dbname=db["NAME"]
    )
    # In the order the flush will name them (a set's order, the same within this process).
    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    first, last = tables[0], tables[-1]
    reader.execute(f'SELECT 1 FROM "{last}" LIMIT 1')

    def read_the_first_table_once_the_flush_holds_it():
        time.sleep(0.5)
        reader.execute(f'SELECT 1 FROM "{first}" LIMIT 1')
        reader.commit()
        reader.close()

    threading.Thread(target=read_the_first_table_once_the_flush_holds_it, daemon=True).start()
    # then: this test's teardown flushes without an error (the deadlock ends one of the two)
