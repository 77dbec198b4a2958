"""A step run whose publish fails (the broker is down), or whose message the broker lost, is sent
again by the next sweep, within seconds of the broker's return, not CHAMELEON_REDISPATCH_AFTER_S
later."""

import socket

import pytest
from celery import current_app

from workflows.engine.dispatch import broker_redis
from workflows.engine.runs import run_start
from workflows.engine.sweeps import (
    BROKER_MARK,
    steps_dispatch_due,
    steps_resend_after_broker_loss,
)
from workflows.models import StepRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker_down():
    """The app's broker on a port where nothing listens (a real Redis URL, no server); call
    what it yields to bring the real one back."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    saved = current_app.conf.broker_url

    def connect_to(url: str) -> None:
        current_app.close()  # its pool of connections, and the producers bound to them
        current_app.amqp._producer_pool = None
        current_app.conf.broker_url = url

    def back() -> None:
        connect_to(saved)

    connect_to(f"redis://127.0.0.1:{port}/0")
    yield back
    back()


@pytest.mark.parametrize("steps", [3, 150], ids=["sent here", "sent by a worker"])
def test_a_publish_that_fails_leaves_the_run_started_and_its_steps_to_the_next_sweep(
    make_workflow, operator, django_capture_on_commit_callbacks, broker_down, steps
):
    roots = "".join(f"  - {{id: s{n}, needs: [], tool: noop}}\n" for n in range(steps))
    workflow = make_workflow(f"slug: unsent\nsteps:\n{roots}")

    with django_capture_on_commit_callbacks(execute=True):
        run, created = run_start(workflow=workflow, inputs={}, started_by=operator)

    assert created
    assert not StepRun.objects.filter(run=run, dispatched_at__isnull=False).exists()
    broker_down()  # the broker is back
    with django_capture_on_commit_callbacks(execute=True):
        assert steps_dispatch_due() == steps  # at once, not after REDISPATCH_AFTER_S


def test_step_runs_sent_to_a_broker_that_lost_its_messages_are_sent_again_at_once(
    make_workflow, operator, django_capture_on_commit_callbacks
):
    workflow = make_workflow("slug: forgotten\nsteps:\n  - {id: a, tool: noop}\n")
    with django_capture_on_commit_callbacks(execute=True):
        run_start(workflow=workflow, inputs={}, started_by=operator)
    broker = broker_redis()
    broker.set(BROKER_MARK, "before")
    assert steps_resend_after_broker_loss() == 0
    assert steps_dispatch_due() == 0  # sent a moment ago

    broker.delete(BROKER_MARK)  # what a restart without persistence does, with the messages

    assert steps_resend_after_broker_loss() == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert steps_dispatch_due() == 1
    assert steps_resend_after_broker_loss() == 0
