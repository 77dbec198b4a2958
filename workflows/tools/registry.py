from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel


@dataclass(frozen=True)
class ToolContext:
    idempotency_key: str
    timeout_s: float


@dataclass(frozen=True)
class Tool:
    name: str
    params: type[BaseModel]
    fn: Callable[[BaseModel, ToolContext], Any]
    description: str = ""


_tools: dict[str, Tool] = {}


def tool(name: str, params: type[BaseModel]):
    """Register the decorated function as tool `name` taking `params`."""

    def decorate(fn):
        _tools[name] = Tool(name=name, params=params, fn=fn, description=(fn.__doc__ or "").strip())
        return fn

    return decorate


def tool_get(name: str) -> Tool | None:
    return _tools.get(name)


def tool_names() -> list[str]:
    return sorted(_tools)
