"""A circuit breaker per provider, its state in Django's cache (Redis when REDIS_URL is set), so
every worker process and host sees the same.

Closed: calls go through; failures are counted in a window of `window_s` (a fixed window per
provider, started by its first failure). At `failures` the breaker opens: calls are skipped
without being made. After `cooldown_s` it is half-open: exactly one caller wins the trial
(an atomic add), and its call closes the breaker or opens it again. The check before a call is
one cache read. If the cache cannot be reached, calls go through (logged): a broken breaker must
not stop every agent.
"""

import logging
import time
from dataclasses import dataclass

from django.core.cache import cache

from agents.specs import BreakerSpec, ProviderSpec

logger = logging.getLogger(__name__)
CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"
_TRIAL_HOLD_S = 120  # a trial caller that died frees the trial after this


@dataclass(frozen=True)
class Permit:
    """May a call go to the provider now? `trial`: it is the half-open breaker's one trial."""

    allowed: bool
    trial: bool = False


@dataclass(frozen=True)
class BreakerState:
    state: str
    failures: int  # in the current window
    opened_at: float | None


def _keys(provider: str) -> tuple[str, str, str]:
    base = f"chameleon:breaker:{provider}"
    return f"{base}:opened", f"{base}:failures", f"{base}:trial"


def breaker_permit(provider: str, config: BreakerSpec) -> Permit:
    opened_key, _, trial_key = _keys(provider)
    try:
        opened_at = cache.get(opened_key)
        if opened_at is None:
            return Permit(True)
        if time.time() < opened_at + config.cooldown_s:
            return Permit(False)
        won = cache.add(trial_key, time.time(), timeout=_TRIAL_HOLD_S)
        return Permit(won, trial=won)
    except Exception:
        logger.exception("breaker of %s unreadable; letting the call through", provider)
        return Permit(True)


def breaker_record(provider: str, config: BreakerSpec, permit: Permit, ok: bool) -> str | None:
    """Count the call's outcome; return the breaker's new state when this call changed it."""
    opened_key, failures_key, trial_key = _keys(provider)
    try:
        if permit.trial:
            cache.delete(trial_key)
            if ok:
                cache.delete_many([opened_key, failures_key])
                return CLOSED
            cache.set(opened_key, time.time(), timeout=None)
            return OPEN
        if ok:
            return None
        cache.add(failures_key, 0, timeout=config.window_s)
        if cache.incr(failures_key) < config.failures:
            return None
        cache.delete(failures_key)
        return OPEN if cache.add(opened_key, time.time(), timeout=None) else None
    except Exception:
        logger.exception("breaker of %s not updated", provider)
        return None


def breaker_state(provider: str, config: BreakerSpec) -> BreakerState:
    opened_key, failures_key, _ = _keys(provider)
    values = cache.get_many([opened_key, failures_key])
    opened_at = values.get(opened_key)
    if opened_at is None:
        return BreakerState(CLOSED, values.get(failures_key) or 0, None)
    cooled = time.time() >= opened_at + config.cooldown_s
    return BreakerState(HALF_OPEN if cooled else OPEN, values.get(failures_key) or 0, opened_at)


def provider_breaker(provider) -> BreakerState:
    """The breaker of a Provider row, as its spec configures it."""
    return breaker_state(provider.slug, ProviderSpec.model_validate(provider.spec).breaker)


def breaker_reset(provider: str) -> None:
    cache.delete_many(list(_keys(provider)))
