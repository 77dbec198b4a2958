from collections import deque

from django.contrib.auth import get_user_model
from pydantic import BaseModel, ConfigDict

from config.errors import ChameleonError
from workflows.engine.api import Fail, Publishing, StepContext, Wait, executor_register, run_start
from workflows.models import StepRun, Workflow
from workflows.selectors import workflow_runnable_by
from workflows.spec import SpecError, StepSpec, spec_for_version


class WorkflowFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workflow: str


class SubWorkflowExecutor:
    """`workflow: <slug>`: start that workflow as a child run; the step waits until it ends."""

    kind = "workflow"
    fields = WorkflowFields

    def validate(self, step: StepSpec, params: WorkflowFields, path: str, publishing):
        if publishing is None:
            return []
        if params.workflow == publishing.slug:
            return [SpecError(f"{path}.workflow", "a workflow cannot run itself")]
        # Only workflows the author may run (else: unknown, so nothing leaks about others).
        if workflow_runnable_by(publishing.author, params.workflow) is None:
            return [SpecError(f"{path}.workflow", f"unknown workflow '{params.workflow}'")]
        return _call_cycle_errors(params.workflow, f"{path}.workflow", publishing)

    def runs_inline(self, step: StepSpec, params: WorkflowFields) -> bool:
        return False

    def execute(self, context: StepContext) -> Wait:
        step, slug = context.step, context.params.workflow
        starter = get_user_model().objects.filter(pk=context.started_by_id).first()
        # Checked again at run time: the starter may have lost the right since publishing.
        workflow = workflow_runnable_by(starter, slug)
        if workflow is None:
            raise Fail(f"step '{step.id}': unknown workflow '{slug}'", retryable=False)

        try:
            child, _ = run_start(
                workflow=workflow,
                inputs=context.input,
                started_by=starter,
                # The same attempt executed twice (a redelivery) finds the child it started.
                idempotency_key=f"{context.idempotency_key}:{context.attempt}",
                parent_step_run=StepRun.objects.get(pk=context.step_run_id),
            )
        except ChameleonError as exc:
            details = exc.details or ""
            raise Fail(f"step '{step.id}': {exc.message} {details}", code=exc.code) from None
        return Wait(reason="child_run", ref=str(child.pk))


def _call_cycle_errors(callee: str, path: str, publishing: Publishing) -> list[SpecError]:
    """Refuse a call that leads, through the current versions of the workflows it calls, back
    to the workflow being published (a run of it would nest until the limit)."""
    calls = deque([[publishing.slug, callee]])
    visited = set()
    while calls:
        chain = calls.popleft()
        if chain[-1] == publishing.slug:
            return [SpecError(path, f"closes a cycle: {' -> '.join(chain)}")]
        if chain[-1] in visited:
            continue
        visited.add(chain[-1])
        called = Workflow.objects.select_related("current_version").filter(slug=chain[-1]).first()
        if called is None or called.current_version is None:
            continue
        for step in spec_for_version(called.current_version).steps:
            if step.kind == "workflow":
                calls.append([*chain, step.params.workflow])
    return []


executor_register(SubWorkflowExecutor())
