"""Talking to LLM vendors over HTTP, with retries; no database, no Django."""

from agents.wire.keys import api_key_from_env
from agents.wire.reply import ProviderError, Reply, Request
from agents.wire.retries import Attempt, send_with_retries
from agents.wire.send import send
from agents.wire.simulated import count_tokens, simulate

__all__ = [
    "Attempt",
    "ProviderError",
    "Reply",
    "Request",
    "api_key_from_env",
    "count_tokens",
    "send",
    "send_with_retries",
    "simulate",
]
