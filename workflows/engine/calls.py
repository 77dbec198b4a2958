"""Leased executions in flight: each worker process keeps up to CALLS_IN_FLIGHT of them at once.

A step with an outside effect (an HTTP call, an LLM, a person's inbox) spends its time waiting
on the network. Its Celery task only claims it (a short transaction) and hands it here; the task
returns and the worker takes the next message. The execution runs on a thread of this pool, is
timed out by the pool's event loop, and its outcome is recorded by one of a few recorder
threads. So a waiting call holds a thread, never a PostgreSQL connection: executor threads close
any connection they opened, and only the recorders (RECORDERS per process) keep one.

The step run's lease, not the broker message, is what makes this durable: a process that dies
with calls in flight leaves them RUNNING past their lease, and the beat sweep hands them to
another worker (engine.sweeps.steps_recover_expired).
"""

import asyncio
import functools
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

from django.conf import settings
from django.db import close_old_connections, connection, connections

from config.errors import database_unreachable
from workflows.engine.contract import Fail
from workflows.engine.runner import Claim, claim_perform, step_run_record

logger = logging.getLogger(__name__)
RECORD_RETRY_DELAYS_S = (0.5, 1, 2, 4, 8, 10, 10, 10, 10)  # about a minute


class _Calls:
    def __init__(self):
        self._guard = threading.Lock()
        self._pid = None

    def _start(self) -> None:
        """Start the pool in this process (again in a forked child: threads do not survive it)."""
        with self._guard:
            if self._pid == os.getpid():
                return
            limits = settings.CHAMELEON
            self.in_flight = threading.BoundedSemaphore(limits["CALLS_IN_FLIGHT"])
            self.threads = ThreadPoolExecutor(limits["CALLS_IN_FLIGHT"], thread_name_prefix="call")
            self.recorders = ThreadPoolExecutor(limits["RECORDERS"], thread_name_prefix="record")
            self.loop = asyncio.new_event_loop()
            threading.Thread(target=self.loop.run_forever, name="calls", daemon=True).start()
            self.running: set = set()
            self._pid = os.getpid()

    def slot(self) -> None:
        """Wait until this process may start one more call; the caller then must submit()."""
        self._start()
        self.in_flight.acquire()

    def release(self) -> None:
        self.in_flight.release()

    def submit(self, claim: Claim) -> None:
        """Execute and record the claimed step run in the pool (after slot())."""
        future = asyncio.run_coroutine_threadsafe(self._call(claim), self.loop)
        self.running.add(future)
        future.add_done_callback(self.running.discard)

    async def _call(self, claim: Claim) -> None:
        step = claim.context.step
        execution = asyncio.ensure_future(self._execute(claim))
        try:
            try:
                outcome = await asyncio.wait_for(asyncio.shield(execution), step.timeout_s)
            except TimeoutError:
                message = f"step '{step.id}' timed out after {step.timeout_s:g}s"
                await self._recorded(claim, Fail(message, code="timeout"), call_in_flight=True)
                outcome = await execution  # recorded late: what it spent is kept
            await self._recorded(claim, outcome)
        except Exception:  # the lease runs out and the sweep hands the step to another worker
            logger.exception("recording step run %s failed", claim.step_run_id)

    async def _recorded(self, claim: Claim, outcome, call_in_flight=False) -> None:
        """Record the outcome; while the database is unreachable, try again (the call's work is
        done and would otherwise be done again once its lease runs out)."""
        record = functools.partial(_record, claim, outcome, call_in_flight=call_in_flight)
        for delay in (*RECORD_RETRY_DELAYS_S, None):
            try:
                await self.loop.run_in_executor(self.recorders, record)
                return
            except Exception as exc:
                if delay is None or not database_unreachable(exc):
                    raise
                await asyncio.sleep(delay)

    async def _execute(self, claim: Claim):
        # The slot is free when the thread is: a call that outlives its timeout still holds one.
        future = self.threads.submit(_perform, claim)
        future.add_done_callback(lambda _: self.release())
        return await asyncio.wrap_future(future)

    def wait(self, timeout_s: float) -> None:
        """Let the calls in flight finish (a stopping worker), for up to `timeout_s`."""
        if self._pid is not None and self.running:
            wait(list(self.running), timeout=timeout_s)


def connection_release() -> None:
    """Let this thread's database connection go before a long wait: what a leased executor calls
    between its reads and its call, so that waiting calls hold no connection. Inside a
    transaction (an inline step, a test) it keeps it."""
    if not connection.in_atomic_block:
        connection.close()


def _perform(claim: Claim):
    try:
        return claim_perform(claim)
    finally:
        connections.close_all()  # this thread's own, if the executor opened one


def _record(claim: Claim, outcome, *, call_in_flight=False) -> str:
    close_old_connections()  # a recorder keeps its connection, unless it is broken or old
    return step_run_record(claim, outcome, call_in_flight=call_in_flight)


calls = _Calls()
