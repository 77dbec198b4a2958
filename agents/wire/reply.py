"""What goes to an LLM vendor, what comes back, and how a call fails."""

from dataclasses import dataclass

MESSAGE_LIMIT = 300


@dataclass(frozen=True)
class Request:
    model: str
    system: str
    prompt: str
    max_tokens: int
    timeout_s: float  # per attempt


@dataclass(frozen=True)
class Reply:
    text: str
    input_tokens: int
    output_tokens: int


class ProviderError(Exception):
    """One failed attempt at a vendor, or a provider that cannot be called at all.

    `usage` is `(input_tokens, output_tokens)` when the vendor reported tokens for a reply that
    could not be used, so the caller can cost the failed attempt.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        retryable: bool,
        status: int | None = None,
        retry_after_s: float | None = None,
        usage: tuple[int, int] | None = None,
    ):
        self.message = bounded(message)
        self.code = code
        self.retryable = retryable
        self.status = status
        self.retry_after_s = retry_after_s
        self.usage = usage
        super().__init__(self.message)


def bounded(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """Fold whitespace and cut `text` to `limit` characters."""
    folded = " ".join(text.split())
    return folded if len(folded) <= limit else folded[: limit - 1] + "…"
