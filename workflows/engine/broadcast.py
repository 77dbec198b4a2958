"""Send run events to Channels groups from a background event loop, in commit order.

Broadcasting is best effort and off the engine's hot path: the events are already committed,
and a client that missed some reads them from the API with `after=<seq>`. One loop thread per
process (started lazily, and again after a fork) keeps one connection to the channel layer
instead of opening one per call, and one queue keeps messages in the order they were sent.
"""

import asyncio
import logging
import os
import threading

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)
RUNS_GROUP = "runs"
COALESCE_MAX = 200  # queued broadcasts sent as one message per group


def run_group(run_id: str) -> str:
    return f"run.{run_id}"


class _Broadcaster:
    def __init__(self):
        self._guard = threading.Lock()
        self._pid = None
        self._loop = None
        self._queue = None

    def send(self, run_id: str, messages: list[dict]) -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        loop, queue = self._started()
        loop.call_soon_threadsafe(queue.put_nowait, (layer, run_id, messages))

    def _started(self):
        with self._guard:
            if self._pid != os.getpid():  # first use in this process, or a forked child
                self._loop = asyncio.new_event_loop()
                self._queue = asyncio.Queue()
                self._pid = os.getpid()
                threading.Thread(
                    target=self._run, args=(self._loop, self._queue), name="run-events", daemon=True
                ).start()
            return self._loop, self._queue

    @staticmethod
    def _run(loop, queue):
        asyncio.set_event_loop(loop)
        loop.run_until_complete(_forward(queue))


async def _forward(queue: asyncio.Queue) -> None:
    while True:
        batches = [await queue.get()]
        while not queue.empty() and len(batches) < COALESCE_MAX:
            batches.append(queue.get_nowait())
        # What piled up while the last sends were out leaves together: one message per run
        # group and one for `runs`, events still in commit order within each.
        layer = batches[0][0]
        by_run: dict[str, list[dict]] = {}
        for _, run_id, messages in batches:
            by_run.setdefault(run_id, []).extend(messages)
        sends = [(run_group(run_id), events) for run_id, events in by_run.items()]
        sends.append((RUNS_GROUP, [event for events in by_run.values() for event in events]))
        for group, events in sends:
            try:
                await layer.group_send(group, {"type": "run.events", "events": events})
            except Exception:
                logger.exception("broadcasting events to %s failed", group)


_broadcaster = _Broadcaster()


def broadcast(run_id: str, messages: list[dict]) -> None:
    _broadcaster.send(run_id, messages)
