from pydantic import BaseModel, ConfigDict, ValidationError

from workflows.engine.api import Done, Fail, Skip, StepContext, Wait, executor_register
from workflows.spec import SpecError, StepSpec
from workflows.tools import (
    ToolContext,
    builtins,  # noqa: F401  registers the built-in tools
    tool_get,
    tool_names,
)


class ToolFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tool: str


class ToolExecutor:
    """`tool: <name>`: call a registered tool with the step's `with`."""

    kind = "tool"
    fields = ToolFields

    def validate(self, step: StepSpec, params: ToolFields, path: str, publishing):
        tool = tool_get(params.tool)
        if tool is None:
            available = ", ".join(tool_names())
            return [
                SpecError(f"{path}.tool", f"unknown tool '{params.tool}' (available: {available})")
            ]
        errors = []
        fields = tool.params.model_fields
        accepted = {field.alias or name for name, field in fields.items()}
        for key in step.with_:
            if key not in accepted:
                errors.append(
                    SpecError(f"{path}.with.{key}", f"tool '{tool.name}' takes no '{key}'")
                )
        for name, field in fields.items():
            if field.is_required() and (field.alias or name) not in step.with_:
                errors.append(SpecError(f"{path}.with", f"tool '{tool.name}' needs '{name}'"))
        return errors

    def runs_inline(self, step: StepSpec, params: ToolFields) -> bool:
        tool = tool_get(params.tool)
        return tool is not None and tool.pure

    def execute(self, context: StepContext):
        step = context.step
        tool = tool_get(context.params.tool)
        if tool is None:
            raise Fail(f"step '{step.id}': unknown tool '{context.params.tool}'", retryable=False)
        try:
            params = tool.params.model_validate(context.input)
        except ValidationError as exc:
            problems = "; ".join(
                f"with.{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
                for error in exc.errors()
            )
            raise Fail(f"step '{step.id}' {problems}", code="invalid_input") from None
        tool_context = ToolContext(
            idempotency_key=context.idempotency_key, timeout_s=context.timeout_s
        )
        result = tool.fn(params, tool_context)
        return result if isinstance(result, Done | Wait | Skip | Fail) else Done(output=result)


executor_register(ToolExecutor())
