"""The API's rate limits: per signed-in user, per client address, per scope (the token views),
and one for everyone together. They fail open: when their cache (Redis) cannot be reached, a
request is let through (and the outage logged) rather than answered with an error."""

import ipaddress
import logging
import time

import redis
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


class _GlobalCount(throttling.SimpleRateThrottle):
    """One counter per fixed window for every request of every client: an atomic increment
    (Redis INCR) on a key that expires with its window, so any number of web processes share it.
    """

    scope = "global"

    def get_rate(self):
        return self.THROTTLE_RATES.get(self.scope)  # none set: no global limit

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        now = time.time()
        window = int(now // self.duration)
        key = self.cache_format % {"scope": self.scope, "ident": window}
        self.cache.add(key, 0, self.duration + 1)
        try:
            count = self.cache.incr(key)
        except ValueError:  # the window's key expired between the two calls
            self.cache.add(key, 1, self.duration + 1)
            count = 1
        self.wait_s = (window + 1) * self.duration - now
        return count <= self.num_requests

    def wait(self):
        return self.wait_s


class GlobalRateThrottle(_FailOpen, _GlobalCount):
    pass
