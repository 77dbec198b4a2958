"""Registered tool callables with typed input schemas, called by `tool:` steps."""

from workflows.tools.registry import Tool, ToolContext, tool_get, tool_names

__all__ = ["Tool", "ToolContext", "tool_get", "tool_names"]
