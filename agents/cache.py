"""Answers kept in Django's cache (Redis when REDIS_URL is set) for an agent's `cache_ttl_s`,
keyed by the agent version and the rendered input: a new version never reads an older one's."""

import hashlib
import json
import logging

from django.core.cache import cache

from agents.specs import AgentSpec

logger = logging.getLogger(__name__)


def _key(version_id: int, system: str, prompt: str) -> str:
    rendered = json.dumps([system, prompt]).encode()
    return f"chameleon:answer:{version_id}:{hashlib.sha256(rendered).hexdigest()}"


def answer_cached(version_id: int, spec: AgentSpec, system: str, prompt: str) -> dict | None:
    if not spec.cache_ttl_s:
        return None
    try:
        return cache.get(_key(version_id, system, prompt))
    except Exception:
        logger.exception("answer cache unreadable; calling the provider")
        return None


def answer_keep(version_id: int, spec: AgentSpec, system: str, prompt: str, output: dict) -> None:
    if not spec.cache_ttl_s:
        return
    try:
        cache.set(_key(version_id, system, prompt), output, timeout=spec.cache_ttl_s)
    except Exception:
        logger.exception("answer not cached")
