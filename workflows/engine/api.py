"""The engine's one public door. Apps outside `workflows` import only this module (a test keeps
it so); workflows/engine/README.md is the guide.

- Step outcomes an executor returns: Done, Wait, Skip, Fail (Fail may also be raised).
- Step kinds: an executor (StepExecutor protocol) registered with `executor_register`.
- Gates asked before every step: a Gate registered with `gate_register`, answering Allow,
  Block, Route or Escalate (or None); a decision's `records` are saved with it.
- People: a handler registered with `step_waiting_register` hears of every step run that starts
  to wait (Waiting: an executor's Wait, a gate's Escalate, a failure under `on_failure:
  escalate`), a reviewer (`review_register`) may hold a success for someone to confirm, and
  `run_finished_register` hears of every run that ends; all inside the engine's transaction.
- Spec fields a plug-in reads (`guard:` on a step, `guards:` on the workflow): registered with
  `step_field_register` / `workflow_field_register`, validated at publish with their paths.
- Services that move a waiting step from outside: step_resume, step_override, step_fail,
  step_skip, step_retry. Each is atomic, raises Conflict when the step run is no longer waiting
  on the reference the caller quotes, and dispatches what comes next when it commits.
- Runs: run_start, run_cancel, run_retry (a FAILED run's failed steps get a fresh attempt and
  it runs on: engine.retry), run_visible (one run, or NotFound), runs_visible (the queryset of
  runs a user may view). Events: engine.events documents every type and its payload; a
  plug-in's outcomes carry events of the types it registers (`event_type_register`), handlers
  write them with `Waiting.event` / `Review.event` / the run-end handler's `event`, and
  `run_event_add` writes one in a transaction of its own.
- Budgets: an attempt holds its worst case before spending (budget_reserve), then settles it
  to what it spent (budget_settle); engine.budget explains why nothing can overshoot or leak.
- Leased executors waiting on the network let their database connection go first
  (connection_release).
- Definitions of a plug-in's own (agents, guardians) reuse the spec machinery: spec_load_text
  (bounded YAML/JSON), spec_error_from_pydantic and spec_invalid (errors with their paths),
  spec_checksum, and the one sandboxed template language (template_check, template_render,
  TemplateError; its lone expressions: expression_check, expression_evaluate, and
  expression_paths, the data an expression reads). `load_workflows DIR` loads the folders a
  plug-in registers with definitions_register (LoadResult: one file's outcome); a run's admin
  page links the pages a plug-in keeps about it (run_page_register), and a run's dashboard
  pages show the sections a plug-in registers with run_panel_register (RunPanel; templates
  render them all with `{% load run_panels %}{% run_panels run %}`) and links its step runs'
  rows to a plug-in's pages (step_links_register).
- Periodic sweeps of a plug-in's own (expiring interventions) run from `manage.py sweep` beside
  the engine's (sweep_register; beat runs the plug-in's Celery task). A plug-in calling a URL an
  author or operator configured checks it as the http tools do (destination_check).
"""

from config.errors import Conflict, NotFound
from workflows.engine.budget import budget_left, budget_reserve, budget_settle
from workflows.engine.calls import connection_release
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
    Review,
    Route,
    Skip,
    StepContext,
    StepExecutor,
    Wait,
    Waiting,
)
from workflows.engine.events import EVENT_TYPES
from workflows.engine.plugin_events import run_event_add
from workflows.engine.registry import (
    RunPanel,
    definitions_register,
    event_type_register,
    executor_register,
    gate_register,
    review_register,
    run_finished_register,
    run_page_register,
    run_panel_register,
    step_field_register,
    step_links_register,
    step_waiting_register,
    sweep_register,
    workflow_field_register,
)
from workflows.engine.retry import run_retry
from workflows.engine.runs import run_cancel, run_start
from workflows.engine.steps import (
    step_fail,
    step_override,
    step_resume,
    step_retry,
    step_run_lock,
    step_skip,
)
from workflows.expressions import ExpressionError as TemplateError
from workflows.expressions import compile_expression as expression_check
from workflows.expressions import compile_template as template_check
from workflows.expressions import evaluate as expression_evaluate
from workflows.expressions import expression_paths
from workflows.expressions import render as template_render
from workflows.loading import LoadResult, definition_files_ordered
from workflows.selectors import run_get_visible as run_visible
from workflows.selectors import runs_visible_to as runs_visible
from workflows.spec import (
    Publishing,
    SpecError,
    StepSpec,
    WorkflowSpec,
    spec_checksum,
    spec_error_from_pydantic,
    spec_invalid,
    spec_load_text,
)


def destination_check(url: str) -> None:
    """Raise Fail (not retryable) naming the rule when the http tools could not call `url`:
    http(s) to public addresses only, or to HTTP_TOOLS_ALLOWED_HOSTS (workflows.tools.outbound)."""
    from workflows.tools.outbound import destination_check as check  # it imports this module

    check(url)


__all__ = [
    "Allow",
    "Block",
    "Conflict",
    "Decision",
    "Done",
    "EVENT_TYPES",
    "Escalate",
    "Fail",
    "Gate",
    "GateCheck",
    "LoadResult",
    "NotFound",
    "Outcome",
    "Publishing",
    "Review",
    "Route",
    "RunPanel",
    "Skip",
    "SpecError",
    "StepContext",
    "StepExecutor",
    "StepSpec",
    "TemplateError",
    "Wait",
    "Waiting",
    "WorkflowSpec",
    "budget_left",
    "budget_reserve",
    "budget_settle",
    "connection_release",
    "definition_files_ordered",
    "definitions_register",
    "destination_check",
    "event_type_register",
    "executor_register",
    "expression_check",
    "expression_evaluate",
    "expression_paths",
    "gate_register",
    "review_register",
    "run_cancel",
    "run_event_add",
    "run_finished_register",
    "run_page_register",
    "run_retry",
    "run_panel_register",
    "run_start",
    "run_visible",
    "runs_visible",
    "spec_checksum",
    "spec_error_from_pydantic",
    "spec_invalid",
    "spec_load_text",
    "step_fail",
    "step_field_register",
    "step_links_register",
    "step_override",
    "step_resume",
    "step_retry",
    "step_run_lock",
    "step_skip",
    "step_waiting_register",
    "sweep_register",
    "template_check",
    "template_render",
    "workflow_field_register",
]
