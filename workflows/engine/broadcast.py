"""Send run events to Channels groups after commit, from the thread that committed them.

Broadcasting is best effort: the events are already committed, and a client that missed some
reads them from the API with `after=<seq>`. The sends run on one event loop per process (kept,
so the channel layer keeps its connection), in the committing thread, one thread at a time.
Not on a background thread: a step's worker would then trade the GIL with it at every wait
for the database, which measured (bench/) as a third of a short step's time.
"""

import asyncio
import logging
import os
import threading

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)
RUNS_GROUP = "runs"
SEND_TIMEOUT_S = 2.0  # a broker that does not answer delays the step no longer than this


def run_group(run_id: str) -> str:
    return f"run.{run_id}"


class _Broadcaster:
    def __init__(self):
        self._guard = threading.Lock()
        self._pid = None
        self._loop = None

    def send(self, run_id: str, messages: list[dict]) -> None:
        layer = get_channel_layer()
        if layer is None:
            return
        sending = _send(layer, [(run_group(run_id), messages), (RUNS_GROUP, messages)])
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not None:  # called from async code: send from its loop
            running.create_task(sending)
            return
        with self._guard:
            if self._pid != os.getpid():  # first use in this process, or a forked child
                self._loop, self._pid = asyncio.new_event_loop(), os.getpid()
            self._loop.run_until_complete(sending)


async def _send(layer, sends: list[tuple[str, list[dict]]]) -> None:
    for group, events in sends:
        message = {"type": "run.events", "events": events}
        try:
            await asyncio.wait_for(layer.group_send(group, message), SEND_TIMEOUT_S)
        except Exception:
            logger.exception("broadcasting events to %s failed", group)


_broadcaster = _Broadcaster()


def broadcast(run_id: str, messages: list[dict]) -> None:
    _broadcaster.send(run_id, messages)
