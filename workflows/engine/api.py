"""The engine's one public door. Apps outside `workflows` import only this module (a test keeps
it so); workflows/engine/README.md is the guide.

- Step outcomes an executor returns: Done, Wait, Skip, Fail (Fail may also be raised).
- Step kinds: an executor (StepExecutor protocol) registered with `executor_register`.
- Gates asked before every step: a Gate registered with `gate_register`, answering Allow,
  Block, Route or Escalate (or None).
- Spec fields a plug-in reads (`guard:` on a step, `guards:` on the workflow): registered with
  `step_field_register` / `workflow_field_register`, validated at publish with their paths.
- Services that move a waiting step from outside: step_resume, step_override, step_fail,
  step_skip, step_retry. Each is atomic, raises Conflict when the step run is no longer waiting
  on the reference the caller quotes, and dispatches what comes next when it commits.
- Runs: run_start, run_cancel. Events: engine.events documents every type and its payload.
"""

from config.errors import Conflict, NotFound
from workflows.engine.contract import (
    Allow,
    Block,
    Decision,
    Done,
    Escalate,
    Fail,
    Gate,
    GateCheck,
    Outcome,
    Route,
    Skip,
    StepContext,
    StepExecutor,
    Wait,
)
from workflows.engine.events import EVENT_TYPES
from workflows.engine.registry import (
    executor_register,
    gate_register,
    step_field_register,
    workflow_field_register,
)
from workflows.engine.runs import run_cancel, run_start
from workflows.engine.steps import step_fail, step_override, step_resume, step_retry, step_skip
from workflows.spec import Publishing, SpecError, StepSpec, WorkflowSpec

__all__ = [
    "EVENT_TYPES",
    "Allow",
    "Block",
    "Conflict",
    "Decision",
    "Done",
    "Escalate",
    "Fail",
    "Gate",
    "GateCheck",
    "NotFound",
    "Outcome",
    "Publishing",
    "Route",
    "Skip",
    "SpecError",
    "StepContext",
    "StepExecutor",
    "StepSpec",
    "Wait",
    "WorkflowSpec",
    "executor_register",
    "gate_register",
    "run_cancel",
    "run_start",
    "step_fail",
    "step_field_register",
    "step_override",
    "step_resume",
    "step_retry",
    "step_skip",
    "workflow_field_register",
]
