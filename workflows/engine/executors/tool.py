from pydantic import ValidationError

from workflows.engine.executors.base import Done, StepContext, StepFailed, Wait, register
from workflows.spec import SpecError, StepSpec
from workflows.tools import (
    ToolContext,
    builtins,  # noqa: F401  registers the built-in tools
    tool_get,
    tool_names,
)


class ToolExecutor:
    kind = "tool"

    def validate(self, step: StepSpec, path: str) -> list[SpecError]:
        tool = tool_get(step.tool)
        if tool is None:
            return [
                SpecError(
                    f"{path}.tool",
                    f"unknown tool '{step.tool}' (available: {', '.join(tool_names())})",
                )
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

    def runs_inline(self, step: StepSpec) -> bool:
        return tool_get(step.tool).pure

    def execute(self, context: StepContext) -> Done | Wait:
        tool = tool_get(context.step.tool)
        try:
            params = tool.params.model_validate(context.input)
        except ValidationError as exc:
            problems = "; ".join(
                f"with.{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
                for error in exc.errors()
            )
            raise StepFailed(f"step '{context.step.id}' {problems}") from None
        tool_context = ToolContext(
            idempotency_key=context.step_run.idempotency_key, timeout_s=context.timeout_s
        )
        result = tool.fn(params, tool_context)
        return result if isinstance(result, Wait) else Done(output=result)


register(ToolExecutor())
