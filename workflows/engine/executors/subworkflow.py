from config.errors import ChameleonError
from workflows.engine.executors.base import StepContext, StepFailed, Wait, register
from workflows.engine.runs import run_start
from workflows.selectors import workflow_runnable_by
from workflows.spec import SpecError, StepSpec


class SubWorkflowExecutor:
    """Start the named workflow as a child run; the step waits until the child ends."""

    kind = "workflow"

    def validate(self, step: StepSpec, path: str) -> list[SpecError]:
        return []  # existence is checked at publish time against the database

    def runs_inline(self, step: StepSpec) -> bool:
        return False

    def execute(self, context: StepContext) -> Wait:
        # Checked again at run time: the starter may have lost the right since publishing.
        workflow = workflow_runnable_by(context.run.started_by, context.step.workflow)
        if workflow is None:
            raise StepFailed(
                f"step '{context.step.id}': unknown workflow '{context.step.workflow}'"
            )
        step_run = context.step_run
        try:
            child, _ = run_start(
                workflow=workflow,
                inputs=context.input,
                started_by=context.run.started_by,
                # The same attempt executed twice (a redelivery) finds the child it started.
                idempotency_key=f"{step_run.idempotency_key}:{step_run.attempt}",
                parent_step_run=step_run,
            )
        except ChameleonError as exc:
            details = exc.details or ""
            raise StepFailed(f"step '{context.step.id}': {exc.message} {details}") from None
        return Wait(details={"child_run": str(child.pk)})


register(SubWorkflowExecutor())
