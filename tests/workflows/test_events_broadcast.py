import asyncio
import random
import uuid

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer

from workflows.engine.broadcast import RUNS_GROUP, broadcast, run_group, workflow_group
from workflows.engine.runs import run_start

pytestmark = pytest.mark.django_db


async def _receive(layer, channel, first_within: float) -> list[dict]:
    """Messages on `channel`: wait up to `first_within` s for the first, 0.5 s for each next."""
    messages, timeout = [], first_within
    while True:
        try:
            messages.append(await asyncio.wait_for(layer.receive(channel), timeout=timeout))
        except TimeoutError:
            return messages
        timeout = 0.5


def _events_of(run_id: str, messages: list[dict]) -> list[dict]:
    return [event for m in messages for event in m["events"] if event["run"] == run_id]


def test_events_are_broadcast_after_commit_to_the_run_workflow_and_runs_groups(
    make_workflow, operator, django_capture_on_commit_callbacks
):
    workflow = make_workflow("slug: b\nsteps:\n  - id: a\n    tool: noop\n")
    with django_capture_on_commit_callbacks() as callbacks:
        run, _ = run_start(workflow=workflow, inputs={}, started_by=operator)
    run_id = str(run.pk)

    async def listen_then_commit():
        # One event loop for every receive: channels_redis' receive state belongs to one loop.
        layer = get_channel_layer()
        everything, one_run = await layer.new_channel(), await layer.new_channel()
        one_workflow = await layer.new_channel()
        await layer.group_add(RUNS_GROUP, everything)
        await layer.group_add(run_group(run_id), one_run)
        await layer.group_add(workflow_group(workflow.pk), one_workflow)
        before_commit = await _receive(layer, everything, first_within=0.5)
        for callback in callbacks:  # the commit's hooks: the broadcast and the step's dispatch
            callback()
        received = {
            channel: await _receive(layer, channel, first_within=10)
            for channel in (everything, one_run, one_workflow)
        }
        await layer.group_discard(RUNS_GROUP, everything)
        return before_commit, received

    before_commit, received = async_to_sync(listen_then_commit)()

    assert _events_of(run_id, before_commit) == []  # nothing leaves before commit
    for messages in received.values():
        events = _events_of(run_id, messages)
        assert {message["type"] for message in messages} == {"run.events"}
        assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
        assert [event["type"] for event in events][:3] == [
            "run.created",
            "run.status",
            "step.queued",
        ]


def test_successive_broadcasts_arrive_once_each_and_in_order_per_run_and_group():
    # given: 50 batches of 1-3 events for two runs, interleaved, numbered in order per run
    run_ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    sent: dict[str, list[dict]] = {run_id: [] for run_id in run_ids}
    batches = []
    rng = random.Random(50)
    for _ in range(50):
        run_id = rng.choice(run_ids)
        events = [
            {"run": run_id, "seq": len(sent[run_id]) + n, "type": "test"}
            for n in range(1, rng.randint(1, 3) + 1)
        ]
        sent[run_id] += events
        batches.append((run_id, events))

    async def listen_while_broadcasting():
        layer = get_channel_layer()
        everything = await layer.new_channel()
        per_run = {run_id: await layer.new_channel() for run_id in run_ids}
        await layer.group_add(RUNS_GROUP, everything)
        for run_id, channel in per_run.items():
            await layer.group_add(run_group(run_id), channel)
        # when: sent as the engine sends them, from sync code after each commit
        await sync_to_async(lambda: [broadcast(run_id, 1, events) for run_id, events in batches])()
        received = {
            channel: await _receive(layer, channel, first_within=10)
            for channel in (everything, *per_run.values())
        }
        await layer.group_discard(RUNS_GROUP, everything)
        for run_id, channel in per_run.items():
            await layer.group_discard(run_group(run_id), channel)
        return received[everything], {run_id: received[per_run[run_id]] for run_id in run_ids}

    everything, per_run = async_to_sync(listen_while_broadcasting)()

    # then
    for run_id in run_ids:
        assert _events_of(run_id, everything) == sent[run_id]
        assert [event for m in per_run[run_id] for event in m["events"]] == sent[run_id]
