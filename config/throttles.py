"""The API's rate limits, which fail open: when their cache (Redis) cannot be reached, a request
is let through (and the outage logged) rather than answered with an error."""

import logging

import redis
from rest_framework import throttling

logger = logging.getLogger(__name__)


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
