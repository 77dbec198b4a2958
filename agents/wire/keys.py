"""API keys come from environment variables named in the provider; never from the database."""

import os

from agents.wire.reply import ProviderError


def api_key_from_env(name: str | None) -> str | None:
    """Return the key in variable `name`, or None for a provider that needs none."""
    if not name:
        return None
    key = os.environ.get(name, "").strip()
    if not key:
        raise ProviderError(
            f"environment variable {name} holds no API key", code="missing_key", retryable=False
        )
    return key
