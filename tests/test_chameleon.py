"""`./chameleon worker` keeps its Celery worker running: one that dies is started again, and
SIGTERM or SIGINT stops it for good (Celery's warm shutdown, no restart)."""

import os
import signal
import time

from tests.conftest import SupervisedWorker, _wait_for_worker, worker_environment


def wait_for_new_celery(worker: SupervisedWorker, old: int | None, timeout: float = 30.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = worker.celery_pid()
        if pid is not None and pid != old:
            return pid
        assert worker.process.poll() is None, "./chameleon worker exited"
        time.sleep(0.05)
    raise AssertionError("./chameleon worker did not start Celery again")


def supervised(name: str) -> SupervisedWorker:
    return SupervisedWorker(name, "--pool", "solo", env=worker_environment(through_pgbouncer=False))


def test_a_killed_worker_is_started_again_and_sigterm_stops_it(_clean_broker):
    worker = supervised("supervised")
    try:
        first = wait_for_new_celery(worker, None)
        _wait_for_worker("supervised")

        os.kill(first, signal.SIGKILL)  # as kombu's AttributeError on a broker loss ends it
        second = wait_for_new_celery(worker, first)
        _wait_for_worker("supervised")  # the old one cannot answer
    finally:
        status = worker.stop(signal.SIGTERM)

    assert second != first
    assert status == 0
    assert not os.path.exists(f"/proc/{second}")


def test_sigint_stops_the_worker_without_starting_it_again(_clean_broker):
    worker = supervised("interrupted")
    try:
        celery = wait_for_new_celery(worker, None)
        _wait_for_worker("interrupted")
    finally:
        status = worker.stop(signal.SIGINT)

    assert status == 1  # Celery's own status after a warm shutdown on SIGINT
    assert not os.path.exists(f"/proc/{celery}")
