"""Send run events to Channels groups after commit.

Broadcasting is best effort: the events are already committed, and a client that missed some
reads them from the API with `after=<seq>`. One thread per process (started lazily, and again
after a fork) sends, on its own event loop, so the channel layer keeps one connection and a
committing thread never waits on Redis. It sends as soon as it is woken; what commits meanwhile
leaves with the next send, one message per group, events in commit order.
"""

import asyncio
import atexit
import logging
import os
import threading

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)
RUNS_GROUP = "runs"
SEND_TIMEOUT_S = 2.0  # a broker that does not answer holds the next send no longer than this


def run_group(run_id: str) -> str:
    return f"run.{run_id}"


class _Broadcaster:
    def __init__(self):
        self.start_afresh()

    def start_afresh(self) -> None:
        """Nothing waiting, no thread yet: a new process (a forked child inherits the parent's
        waiting events and maybe a lock another thread held)."""
        self._guard = threading.Lock()
        self._started = False
        self._waiting: list[tuple[str, list[dict]]] = []
        self._wake = threading.Event()

    def send(self, run_id: str, messages: list[dict]) -> None:
        with self._guard:
            if not self._started:
                self._started = True
                threading.Thread(target=self._run, name="run-events", daemon=True).start()
            self._waiting.append((run_id, messages))
        self._wake.set()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        wake = self._wake
        while True:
            wake.wait()
            wake.clear()
            try:
                self.flush(loop)
            except Exception:  # the thread must go on sending
                logger.exception("broadcasting run events failed")

    def flush(self, loop=None) -> None:
        with self._guard:
            batches, self._waiting = self._waiting, []
        layer = get_channel_layer()
        if not batches or layer is None:
            return
        by_run: dict[str, list[dict]] = {}
        for run_id, messages in batches:
            by_run.setdefault(run_id, []).extend(messages)
        sends = [(run_group(run_id), events) for run_id, events in by_run.items()]
        sends.append((RUNS_GROUP, [event for events in by_run.values() for event in events]))
        (loop or asyncio.new_event_loop()).run_until_complete(_send(layer, sends))


async def _send(layer, sends: list[tuple[str, list[dict]]]) -> None:
    for group, events in sends:
        message = {"type": "run.events", "events": events}
        try:
            await asyncio.wait_for(layer.group_send(group, message), SEND_TIMEOUT_S)
        except Exception:
            logger.exception("broadcasting events to %s failed", group)


_broadcaster = _Broadcaster()
atexit.register(_broadcaster.flush)  # what is still waiting
os.register_at_fork(after_in_child=_broadcaster.start_afresh)


def broadcast(run_id: str, messages: list[dict]) -> None:
    _broadcaster.send(run_id, messages)
