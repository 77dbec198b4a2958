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
    pure: bool = False  # quick and without outside effects: may run in the engine's transaction


_tools: dict[str, Tool] = {}


def tool(name: str, params: type[BaseModel], *, pure: bool = False):
    """Register the decorated function as tool `name` taking `params`."""

    def decorate(fn):
        description = (fn.__doc__ or "").strip()
        _tools[name] = Tool(name=name, params=params, fn=fn, description=description, pure=pure)
        return fn

    return decorate


def tool_get(name: str) -> Tool | None:
    return _tools.get(name)


def tool_names() -> list[str]:
    return sorted(_tools)
