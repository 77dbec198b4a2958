"""The three vendor wire formats: where to post, what to send, where text and usage are."""

from collections.abc import Callable
from dataclasses import dataclass

from agents.wire.reply import Request


@dataclass(frozen=True)
class WireFormat:
    path: str
    headers: Callable[[str | None], dict[str, str]]
    body: Callable[[Request], dict]
    # Both raise KeyError, IndexError, TypeError or ValueError on a reply that lacks them.
    text: Callable[[dict], str]
    usage: Callable[[dict], tuple[int, int]]


def _bearer(api_key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {api_key}"} if api_key else {}


def _chat_messages(request: Request) -> list[dict]:
    system = [{"role": "system", "content": request.system}] if request.system else []
    return [*system, {"role": "user", "content": request.prompt}]


def _tokens(*counts) -> tuple[int, int]:
    if not all(type(count) is int and count >= 0 for count in counts):
        raise ValueError("token counts must be non-negative integers")
    return counts


def _string(value) -> str:
    if not isinstance(value, str):
        raise TypeError("reply text is not a string")
    return value


def _anthropic_body(request: Request) -> dict:
    body = {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "messages": [{"role": "user", "content": request.prompt}],
    }
    if request.system:  # the Messages API refuses an empty system text
        body["system"] = request.system
    return body


def _anthropic_text(data: dict) -> str:
    texts = [_string(block["text"]) for block in data["content"] if block.get("type") == "text"]
    if not texts:
        raise ValueError("reply has no text block")
    return "".join(texts)


ANTHROPIC = WireFormat(
    path="/v1/messages",
    headers=lambda api_key: {
        **({"x-api-key": api_key} if api_key else {}),
        "anthropic-version": "2023-06-01",
        "content-type": "application/json",
    },
    body=_anthropic_body,
    text=_anthropic_text,
    usage=lambda data: _tokens(data["usage"]["input_tokens"], data["usage"]["output_tokens"]),
)

OPENAI = WireFormat(
    path="/chat/completions",
    headers=_bearer,
    body=lambda request: {
        "model": request.model,
        "max_tokens": request.max_tokens,
        "messages": _chat_messages(request),
    },
    text=lambda data: _string(data["choices"][0]["message"]["content"]),
    usage=lambda data: _tokens(data["usage"]["prompt_tokens"], data["usage"]["completion_tokens"]),
)

OLLAMA = WireFormat(
    path="/api/chat",
    headers=_bearer,
    body=lambda request: {
        "model": request.model,
        "stream": False,
        "messages": _chat_messages(request),
        "options": {"num_predict": request.max_tokens},
    },
    text=lambda data: _string(data["message"]["content"]),
    usage=lambda data: _tokens(data["prompt_eval_count"], data["eval_count"]),
)

WIRE_FORMATS = {"anthropic": ANTHROPIC, "openai": OPENAI, "ollama": OLLAMA}
