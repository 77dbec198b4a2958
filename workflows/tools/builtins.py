"""The built-in tools. Each returns a JSON-serialisable value, or a Wait for timers."""

import os
from datetime import timedelta
from functools import cache
from typing import Any

import httpx
from django.utils import timezone
from pydantic import BaseModel, ConfigDict, Field

from workflows.engine.api import Fail, Wait
from workflows.tools.outbound import destination_check
from workflows.tools.registry import ToolContext, tool

ERROR_EXCERPT_CHARS = 200  # of a failing response's body, in the step's error


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoopParams(_Params):
    value: Any = None


@tool("noop", NoopParams, pure=True)
def noop(params: NoopParams, context: ToolContext):
    """Do nothing; return `value`."""
    return params.value


class TemplateRenderParams(_Params):
    template: str


@tool("template.render", TemplateRenderParams, pure=True)
def template_render(params: TemplateRenderParams, context: ToolContext):
    """Return {text}: `template`, rendered by the engine against inputs, state and steps."""
    return {"text": params.template}


class JsonExtractParams(_Params):
    data: Any
    path: str = Field(description="Dotted path, e.g. 'items[0].name'")
    default: Any = None
    required: bool = True


@tool("json.extract", JsonExtractParams, pure=True)
def json_extract(params: JsonExtractParams, context: ToolContext):
    """Return the value at `path` inside `data`."""
    value = params.data
    for part in _path_parts(params.path):
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            if params.required:
                message = f"json.extract: nothing at '{params.path}' (stopped at {part!r})"
                raise Fail(message, code="not_found") from None
            return params.default
    return value


def _path_parts(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for chunk in path.replace("[", ".[").split("."):
        if not chunk:
            continue
        if chunk.startswith("[") and chunk.endswith("]"):
            parts.append(int(chunk[1:-1]))
        else:
            parts.append(chunk)
    return parts


class HttpGetParams(_Params):
    url: str
    params: dict[str, Any] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)


class HttpPostParams(_Params):
    url: str
    json_: Any = Field(default=None, alias="json")
    headers: dict[str, str] = Field(default_factory=dict)


@tool("http.get", HttpGetParams)
def http_get(params: HttpGetParams, context: ToolContext):
    """GET `url`; return {status, body}. A 4xx/5xx response fails the attempt."""
    return _request("GET", params.url, context, params=params.params, headers=params.headers)


@tool("http.post", HttpPostParams)
def http_post(params: HttpPostParams, context: ToolContext):
    """POST `json` to `url` with an Idempotency-Key header stable across retries."""
    headers = {"Idempotency-Key": context.idempotency_key, **params.headers}
    return _request("POST", params.url, context, json=params.json_, headers=headers)


@cache
def _client(pid: int) -> httpx.Client:
    """One client per process, shared by its threads (httpx's Client is thread-safe): a new
    client per call costs ~45 ms of CPU here (its TLS context), more than most calls wait."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=100)
    return httpx.Client(limits=limits)


def _request(method: str, url: str, context: ToolContext, **kwargs):
    destination_check(url)
    # The engine times the step out at timeout_s; the client's own timeout, a second later, is
    # a backstop that frees the thread of a call the engine has given up on.
    timeout = context.timeout_s + 1
    try:
        response = _client(os.getpid()).request(method, url, timeout=timeout, **kwargs)
    except httpx.HTTPError as exc:
        raise Fail(f"{method} {url}: {type(exc).__name__}: {exc}", code="http_error") from None
    if response.status_code >= 400:
        excerpt = " ".join(response.text[:ERROR_EXCERPT_CHARS].split())
        message = f"{method} {url}: HTTP {response.status_code}: {excerpt}"
        raise Fail(message, code="http_error")
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return {"status": response.status_code, "body": body}


class SleepParams(_Params):
    seconds: float = Field(ge=0, le=30 * 86400)


@tool("sleep", SleepParams)
def sleep(params: SleepParams, context: ToolContext):
    """Wait `seconds` without holding a worker: a timer row fired by the beat sweep."""
    return Wait(reason="timer", wake_at=timezone.now() + timedelta(seconds=params.seconds))
