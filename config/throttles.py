"""The API's rate limits: per signed-in user, per client address, per scope (the token views, and
the sign-in pages in the same buckets), and one for everyone together. They fail open: when
their cache (Redis) cannot be reached, a request is let through (and the outage logged) rather
than answered with an error."""

import ipaddress
import logging
import time

import redis
from django.core.cache import cache as default_cache
from rest_framework import throttling

logger = logging.getLogger(__name__)


def client_address(request) -> str | None:
    """The client's address, as DRF's NUM_PROXIES setting says to read it: the throttles', the
    sign-in lockout's (AXES_CLIENT_IP_CALLABLE) and the audit log's.

    With more proxies configured than a request passed through, the entry read is one the client
    wrote: anything but an address there falls back to the connection's.
    """
    address = throttling.BaseThrottle().get_ident(request)
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return request.META.get("REMOTE_ADDR") or None


class _FailOpen:
    def allow_request(self, request, view):
        try:
            return super().allow_request(request, view)
        except (redis.RedisError, OSError) as exc:
            logger.warning("rate limit not checked, its cache is unreachable: %s", exc)
            return True


class UserRateThrottle(_FailOpen, throttling.UserRateThrottle):
    pass


class AnonRateThrottle(_FailOpen, throttling.AnonRateThrottle):
    pass


class ScopedRateThrottle(_FailOpen, throttling.ScopedRateThrottle):
    pass


class SignInRateThrottle(_FailOpen, throttling.SimpleRateThrottle):
    """The token views' `auth` rate, per client address, for the sign-in pages: in the token
    views' buckets, so an address has one rate across the API's sign-in and the pages'."""

    scope = "auth"

    def get_cache_key(self, request, view):
        # ScopedRateThrottle's key for a caller not signed in, as a sign-in's caller is not.
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class FixedWindow:
    """A count under `name` per fixed window of `duration_s` seconds (the current one): an
    atomic increment (Redis INCR) on a key that expires with its window, so any number of web
    processes share it."""

    def __init__(self, name: str, duration_s: int, cache=default_cache):
        now = time.time()
        window = int(now // duration_s)
        self.key = f"{name}:{window}"
        self.wait_s = (window + 1) * duration_s - now  # until the window ends
        self._timeout = duration_s + 1
        self._cache = cache

    def add(self) -> int:
        """Count one more; return the window's count."""
        self._cache.add(self.key, 0, self._timeout)
        try:
            return self._cache.incr(self.key)
        except ValueError:  # the window's key expired between the two calls
            self._cache.add(self.key, 1, self._timeout)
            return 1

    def count(self) -> int:
        return self._cache.get(self.key, 0)

    def clear(self) -> None:
        self._cache.delete(self.key)


class _GlobalCount(throttling.SimpleRateThrottle):
    """One counter per fixed window for every request of every client."""

    scope = "global"

    def get_rate(self):
        return self.THROTTLE_RATES.get(self.scope)  # none set: no global limit

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        name = self.cache_format % {"scope": self.scope, "ident": "all"}
        window = FixedWindow(name, self.duration, self.cache)
        self.wait_s = window.wait_s
        return window.add() <= self.num_requests

    def wait(self):
        return self.wait_s


class GlobalRateThrottle(_FailOpen, _GlobalCount):
    pass
