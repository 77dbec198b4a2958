import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from workflows.engine.broadcast import RUNS_GROUP, run_group
from workflows.engine.runs import run_start

pytestmark = pytest.mark.django_db


async def _drain_channel(layer, channel) -> list[dict]:
    messages = []
    while True:
        try:
            messages.append(await asyncio.wait_for(layer.receive(channel), timeout=0.5))
        except TimeoutError:
            return messages


def _events_of(run, messages: list[dict]) -> list[dict]:
    return [event for m in messages for event in m["events"] if event["run"] == str(run.pk)]


def test_events_are_broadcast_after_commit_to_the_run_and_runs_groups(
    make_workflow, operator, django_capture_on_commit_callbacks
):
    layer = get_channel_layer()
    early = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(RUNS_GROUP, early)
    workflow = make_workflow("slug: b\nsteps:\n  - id: a\n    tool: noop\n")

    with django_capture_on_commit_callbacks() as callbacks:
        run, _ = run_start(workflow=workflow, inputs={}, started_by=operator)
    # Nothing of this run leaves before commit (the runs group also carries other tests' runs).
    assert _events_of(run, async_to_sync(_drain_channel)(layer, early)) == []
    async_to_sync(layer.group_discard)(RUNS_GROUP, early)
    everything, one_run = (async_to_sync(layer.new_channel)() for _ in range(2))
    async_to_sync(layer.group_add)(RUNS_GROUP, everything)
    async_to_sync(layer.group_add)(run_group(str(run.pk)), one_run)

    for callback in callbacks:
        callback()

    for channel in (everything, one_run):
        messages = async_to_sync(_drain_channel)(layer, channel)
        events = _events_of(run, messages)
        assert {message["type"] for message in messages} == {"run.events"}
        assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
        assert [event["type"] for event in events][:3] == [
            "run.created",
            "run.status",
            "step.queued",
        ]
    async_to_sync(layer.group_discard)(RUNS_GROUP, everything)
