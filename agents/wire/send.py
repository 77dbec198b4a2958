"""One attempt at a vendor over HTTP: post the request, read the reply or say why it failed."""

import email.utils
import time

import httpx

from agents.wire.formats import WIRE_FORMATS, WireFormat
from agents.wire.reply import ProviderError, Reply, Request, bounded

EXCERPT_LIMIT = 200


def send(
    kind: str, *, base_url: str, api_key: str | None, request: Request, client: httpx.Client
) -> Reply:
    """Make one attempt, no retry; raise ProviderError for any failure."""
    wire = WIRE_FORMATS.get(kind)
    if wire is None:
        raise ValueError(f"no wire format for provider kind {kind!r}")
    try:
        response = client.post(
            base_url.rstrip("/") + wire.path,
            json=wire.body(request),
            headers=wire.headers(api_key),
            timeout=request.timeout_s,
        )
    except httpx.TimeoutException:
        raise ProviderError(
            f"{kind} did not answer within {request.timeout_s:g} s", code="timeout", retryable=True
        ) from None
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        raise ProviderError(
            f"{kind} base_url is unusable: {_redacted(str(exc), api_key)}",
            code="bad_url",
            retryable=False,
        ) from None
    except httpx.TransportError as exc:
        raise ProviderError(
            f"{kind} connection failed: {_redacted(str(exc) or type(exc).__name__, api_key)}",
            code="connection",
            retryable=True,
        ) from None
    if response.is_success:
        return _reply(kind, wire, response, api_key)
    raise _http_error(kind, wire, response, api_key)


def _reply(kind: str, wire: WireFormat, response: httpx.Response, api_key: str | None) -> Reply:
    try:
        data = response.json()
    except ValueError:
        raise _bad_reply(f"{kind} reply is not JSON", response, api_key) from None
    usage = _usage_or_none(wire, data)
    if usage is None:
        raise _bad_reply(f"{kind} reply carries no usage", response, api_key)
    try:
        text = wire.text(data)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        raise _bad_reply(f"{kind} reply carries no text", response, api_key, usage) from None
    return Reply(text=text, input_tokens=usage[0], output_tokens=usage[1])


def _bad_reply(
    summary: str, response: httpx.Response, api_key: str | None, usage=None
) -> ProviderError:
    return ProviderError(
        f"{summary}: {_excerpt(response.text, api_key)}",
        code="bad_reply",
        retryable=True,
        status=response.status_code,
        usage=usage,
    )


def _http_error(
    kind: str, wire: WireFormat, response: httpx.Response, api_key: str | None
) -> ProviderError:
    status = response.status_code
    try:
        data = response.json()
    except ValueError:
        data = None
    return ProviderError(
        f"{kind} HTTP {status}: {_excerpt(_vendor_message(data) or response.text, api_key)}",
        code=f"http_{status}",
        retryable=status == 429 or status >= 500,
        status=status,
        retry_after_s=_retry_after_s(response.headers),
        usage=_usage_or_none(wire, data),
    )


def _vendor_message(data) -> str | None:
    """Read the message out of Anthropic's, OpenAI's or Ollama's error document."""
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    return error if isinstance(error, str) else None


def _usage_or_none(wire: WireFormat, data) -> tuple[int, int] | None:
    try:
        return wire.usage(data)
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def _retry_after_s(headers: httpx.Headers) -> float | None:
    if milliseconds := headers.get("retry-after-ms"):  # OpenAI's finer-grained hint
        try:
            return max(float(milliseconds) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def _excerpt(text: str, api_key: str | None) -> str:
    return bounded(_redacted(text, api_key), EXCERPT_LIMIT) or "(empty body)"


def _redacted(text: str, api_key: str | None) -> str:
    # Some vendors echo the key they refused; the message is stored and shown.
    return text.replace(api_key, "***") if api_key else text
