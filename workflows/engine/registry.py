"""Where plug-ins register: step kinds, gates, the extra spec fields they read, the types of the
events their outcomes carry, and the definitions they load from files.

Registration happens at import, from each app's AppConfig.ready; a name registered twice is a
programming error and raises.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel

from workflows.engine.contract import Gate, StepExecutor

_executors: dict[str, StepExecutor] = {}
_gates: dict[str, Gate] = {}
# Spec fields a plug-in owns beyond a step kind's: on a step (`guard:`) or on the workflow
# (`guards:`), each with the model it is validated against at publish.
_step_fields: dict[str, type[BaseModel]] = {}
_workflow_fields: dict[str, type[BaseModel]] = {}
# Their checks beyond the model, run at publish once the graph is sound:
# check(spec, step or None, value, path) -> list[SpecError].
_field_checks: dict[tuple[str, str], Callable] = {}
_event_types: dict[str, str] = {}  # a plug-in's event type -> what its payload holds
# Called inside the engine's transaction: when a step run starts to wait (contract.Waiting), when
# a step run is about to succeed (contract.Review: a reviewer may hold it), when a run ends.
_waiting_handlers: list[Callable] = []
_reviewers: list[Callable] = []
_run_finished_handlers: list[Callable] = []
# Pages about a run that plug-ins keep (its LLM calls): label -> url of a run id.
_run_pages: dict[str, Callable[[str], str]] = {}
# Sections plug-ins add to a run's dashboard pages (its LLM calls, its guardian decisions).
_run_panels: dict[str, RunPanel] = {}
# Links plug-ins add to the rows of a run's step runs there: name -> links(run, user).
_step_links: dict[str, Callable] = {}
# Folders of a definitions directory (`load_workflows DIR`) a plug-in loads, in the order given.
_definition_loaders: dict[str, Callable] = {}
# Plug-ins' periodic sweeps (`manage.py sweep` runs them): name -> sweep() returning a count.
_sweeps: dict[str, Callable[[], int]] = {}


def executor_register(executor: StepExecutor) -> StepExecutor:
    if executor.kind in _step_fields:
        raise ValueError(f"step kind '{executor.kind}' is a plug-in's step field")
    _claim(_executors, executor.kind, executor, "step kind")
    return executor


def executor_for(kind: str | None) -> StepExecutor | None:
    return _executors.get(kind) if kind else None


def kinds() -> list[str]:
    return sorted(_executors)


def gate_register(gate: Gate) -> Gate:
    _claim(_gates, gate.name, gate, "gate")
    return gate


def gates() -> list[Gate]:
    """The registered gates, in registration order (the first that does not allow decides)."""
    return list(_gates.values())


def step_field_register(name: str, model: type[BaseModel], validate: Callable | None = None):
    """`validate(spec, step, value, path) -> list[SpecError]`, if given, checks at publish what
    the model cannot (that the steps a value names need this step, say); `value` is validated."""
    from workflows.spec import StepSpec  # here: spec imports this module

    own = {field.alias or key for key, field in StepSpec.model_fields.items()}
    if name in own or name in _executors:
        raise ValueError(f"step field '{name}' is the engine's own or a step kind's")
    _claim(_step_fields, name, model, "step field")
    if validate is not None:
        _claim(_field_checks, ("step", name), validate, "step field check")


def step_field_model(name: str) -> type[BaseModel] | None:
    return _step_fields.get(name)


def workflow_field_register(name: str, model: type[BaseModel], validate: Callable | None = None):
    """As step_field_register; `validate` is called with step None."""
    _claim(_workflow_fields, name, model, "workflow field")
    if validate is not None:
        _claim(_field_checks, ("workflow", name), validate, "workflow field check")


def workflow_field_model(name: str) -> type[BaseModel] | None:
    return _workflow_fields.get(name)


def field_check(where: str, name: str) -> Callable | None:
    """The publish-time check of the plug-in field `name` on a "step" or the "workflow"."""
    return _field_checks.get((where, name))


def event_type_register(name: str, payload: str) -> None:
    """Let outcomes carry events of type `name` (`llm.attempt`), whose payload holds what
    `payload` says; the engine's own types and prefixes (run., step.) are not available."""
    if name.split(".")[0] in ("run", "step") or "." not in name:
        raise ValueError(f"event type '{name}' must be '<plug-in>.<name>', not run.* or step.*")
    _claim(_event_types, name, payload, "event type")


def event_types() -> dict[str, str]:
    return dict(_event_types)


def definitions_register(folder: str, load: Callable) -> None:
    """`load_workflows DIR` loads DIR/<folder> with `load(directory=, owner=, missing_only=)`,
    which returns one LoadResult per file, before the workflows in DIR (which may use them)."""
    _claim(_definition_loaders, folder, load, "definitions folder")


def definition_loaders() -> dict[str, Callable]:
    return dict(_definition_loaders)


def sweep_register(name: str, sweep: Callable[[], int]) -> None:
    """`manage.py sweep` runs `sweep()` after the engine's and prints its count under `name`."""
    _claim(_sweeps, name, sweep, "sweep")


def sweeps() -> dict[str, Callable[[], int]]:
    return dict(_sweeps)


def step_waiting_register(handler: Callable) -> None:
    """`handler(waiting: Waiting)` runs in the transaction that parks a step run (to open an
    intervention for it, say)."""
    _add(_waiting_handlers, handler)


def review_register(reviewer: Callable) -> None:
    """`reviewer(review: Review) -> Wait | None` runs in the transaction that would record a
    step run's success: a Wait holds the step instead (its `output` the proposed output)."""
    _add(_reviewers, reviewer)


def run_finished_register(handler: Callable) -> None:
    """`handler(run_id: str, status: str, event)` runs in the transaction that ends a run;
    `event(type, payload)` writes a run event of a type the plug-in registered, with the end."""
    _add(_run_finished_handlers, handler)


def waiting_handlers() -> list[Callable]:
    return list(_waiting_handlers)


def reviewers() -> list[Callable]:
    return list(_reviewers)


def run_finished_handlers() -> list[Callable]:
    return list(_run_finished_handlers)


def _add(handlers: list, handler) -> None:
    if handler not in handlers:
        handlers.append(handler)


def run_page_register(label: str, url_of: Callable[[str], str]) -> None:
    """Link the run's admin page to a plug-in's page about it: `url_of(run_id)`."""
    _claim(_run_pages, label, url_of, "run page")


def run_pages() -> dict[str, Callable[[str], str]]:
    return dict(_run_pages)


@dataclass(frozen=True)
class RunPanel:
    """A plug-in's section of a run's dashboard pages: `template` rendered with `context(run,
    user)`, plus `run` and `panel`. It reloads on the run's events whose type is or begins with
    one of `reload_on`, whole dotted parts ("llm." or "step.gate"; every event of the run when
    empty), and on a resync."""

    name: str
    title: str
    template: str
    context: Callable[..., dict]
    reload_on: tuple[str, ...] = ()


def run_panel_register(
    name: str,
    template: str,
    context: Callable[..., dict],
    *,
    title: str | None = None,
    reload_on: tuple[str, ...] = (),
) -> RunPanel:
    """Show a section about a run on its dashboard pages, without the dashboard importing the
    plug-in. `name` is a slug (the panel's URL and element id); `context(run, user)` is called
    only for a user who may view the run, and returns the template's context."""
    if not name or not all(part.isalnum() for part in name.split("-")):
        raise ValueError(f"run panel name '{name}' must be a slug of letters, digits and '-'")
    panel = RunPanel(name, title or name.replace("-", " ").capitalize(), template, context,
                     tuple(reload_on))  # fmt: skip
    if _run_panels.get(name, panel) != panel:  # the same registration twice is harmless
        raise ValueError(f"run panel '{name}' is registered already")
    _run_panels[name] = panel
    return panel


def run_panels() -> list[RunPanel]:
    """The registered panels, in registration order."""
    return list(_run_panels.values())


def step_links_register(name: str, links: Callable) -> None:
    """`links(run, user) -> {step_run_id: (label, url)}` links step runs' rows on a run's
    dashboard page to a plug-in's page (the intervention a step waits on); called only for a
    user who may view the run."""
    _claim(_step_links, name, links, "step links")


def step_links() -> list[Callable]:
    return list(_step_links.values())


def _claim(registry: dict, name: str, value, what: str) -> None:
    if name in registry and registry[name] is not value:
        raise ValueError(f"{what} '{name}' is registered already")
    registry[name] = value
