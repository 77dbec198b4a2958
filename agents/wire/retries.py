"""Attempts at one provider, retried with backoff in one place (tenacity)."""

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from agents.wire.reply import ProviderError, Reply, Request
from agents.wire.send import send

RETRY_AFTER_CAP_S = 60.0


@dataclass(frozen=True)
class Attempt:
    """One attempt's outcome: exactly one of `reply` and `error` is set."""

    number: int  # from 1
    reply: Reply | None
    error: ProviderError | None
    latency_s: float


def send_with_retries(
    kind: str,
    *,
    base_url: str,
    api_key: str | None,
    request: Request,
    client: httpx.Client,
    max_attempts: int,
    backoff_s: float,
    max_backoff_s: float,
    on_attempt: Callable[[Attempt], None],
    validate: Callable[[Reply], None] | None = None,
    before_attempt: Callable[[int], None] | None = None,
) -> Reply:
    """Send until a reply passes `validate`, retrying retryable ProviderErrors.

    `before_attempt(number)` runs before each attempt is sent (what it raises ends the retries
    unsent); `on_attempt` hears of every attempt before the next one starts. `validate` raises
    ProviderError (code "invalid_output", retryable) for an answer the caller cannot use; that
    attempt then counts as failed and carries the reply's usage. Raise the last ProviderError
    when attempts run out or one is not retryable.
    """
    retrying = Retrying(
        stop=stop_after_attempt(max_attempts),
        wait=_wait_honouring_retry_after(backoff_s, max_backoff_s),
        retry=retry_if_exception(lambda exc: isinstance(exc, ProviderError) and exc.retryable),
        reraise=True,
    )
    for attempt in retrying:
        with attempt:
            number = attempt.retry_state.attempt_number
            if before_attempt is not None:
                before_attempt(number)
            started = time.monotonic()
            try:
                reply = send(
                    kind, base_url=base_url, api_key=api_key, request=request, client=client
                )
            except ProviderError as error:
                on_attempt(Attempt(number, None, error, time.monotonic() - started))
                raise
            latency_s = time.monotonic() - started
            rejection = _rejection(reply, validate)
            on_attempt(Attempt(number, None if rejection else reply, rejection, latency_s))
            if rejection:
                raise rejection
    return reply


def _rejection(reply: Reply, validate: Callable[[Reply], None] | None) -> ProviderError | None:
    if validate is None:
        return None
    try:
        validate(reply)
    except ProviderError as error:
        if error.usage is None:
            error.usage = (reply.input_tokens, reply.output_tokens)
        return error
    return None


def _wait_honouring_retry_after(
    backoff_s: float, max_backoff_s: float
) -> Callable[[RetryCallState], float]:
    backoff = wait_exponential_jitter(multiplier=backoff_s, max=max_backoff_s, jitter=backoff_s)

    def wait(retry_state: RetryCallState) -> float:
        error = retry_state.outcome.exception()  # only ProviderErrors are retried
        asked_s = min(error.retry_after_s or 0.0, RETRY_AFTER_CAP_S)
        return max(asked_s, backoff(retry_state))

    return wait
