"""Workflow specs: parse YAML/JSON, validate every rule, report every error with its path.

`spec_parse` returns a `WorkflowSpec` or raises InvalidInput whose details map each path
(`steps[2].needs[0]`) to what is wrong there. Nothing about a spec is checked anywhere else.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cached_property
from graphlib import CycleError, TopologicalSorter
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from config.bounds import json_checked, yaml_loaded
from config.errors import InvalidInput
from workflows import expressions
from workflows.engine import registry
from workflows.models import WorkflowVersion

MAX_STEPS = 5000
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"
INPUT_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}
TEMPLATE_ROOTS = {"inputs", "state", "ctx", "steps", "item", "index", "iteration", "output"}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class InputSpec(_Model):
    type: Literal["string", "number", "integer", "boolean", "object", "array"] = "string"
    required: bool = False
    default: Any = None
    description: str = ""

    @model_validator(mode="after")
    def _default_matches_type(self):
        if self.default is not None and not _matches_type(self.default, self.type):
            raise ValueError(f"default is not of type {self.type}")
        return self


class RetrySpec(_Model):
    max_attempts: int = Field(default=1, ge=1, le=20)
    backoff_s: float = Field(default=1.0, ge=0, le=3600)
    max_backoff_s: float = Field(default=60.0, ge=0, le=86400)

    @model_validator(mode="after")
    def _max_not_below_base(self):
        if self.max_backoff_s < self.backoff_s:
            raise ValueError("max_backoff_s must not be below backoff_s")
        return self


class RepeatSpec(_Model):
    until: str
    max: int = Field(ge=1, le=1000)
    every_s: float = Field(default=0, ge=0, le=86400)


class StepSpec(_Model):
    """A step: the engine's own fields, plus its kind's (`tool: noop`) and the fields plug-ins
    registered (`guard: [...]`), kept as extra fields and validated against their models."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    id: str = Field(pattern=IDENTIFIER, max_length=100)
    name: str = ""
    needs: list[str] | None = None
    when: str | None = None
    with_: dict[str, Any] = Field(default_factory=dict, alias="with")
    retry: RetrySpec = RetrySpec()
    timeout_s: float = Field(default=300, gt=0, le=3600)
    foreach: str | None = None
    concurrency: int = Field(default=4, ge=1, le=1000)
    repeat: RepeatSpec | None = None
    set: dict[str, Any] = Field(default_factory=dict)
    # After its last attempt fails: fail (the run fails), or wait for someone to decide.
    on_failure: Literal["fail", "escalate"] = "fail"

    @property
    def kind(self) -> str | None:
        """The registered kind whose key the step has; else the first key no plug-in claims (a
        kind not available here); else None."""
        extra = self.model_extra or {}
        for key in extra:
            if registry.executor_for(key) is not None:
                return key
        return next((key for key in extra if registry.step_field_model(key) is None), None)

    @cached_property
    def params(self) -> BaseModel:
        """The kind's own fields, validated (the step was validated whole when published)."""
        fields = registry.executor_for(self.kind).fields
        return fields.model_validate(_own_fields(self.model_extra or {}, fields))

    def extension(self, name: str):
        """The value of the plug-in field `name` (validated against its model), or None."""
        return _extension(self.model_extra or {}, name, registry.step_field_model)


class WorkflowSpec(_Model):
    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)

    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=100)
    name: str = ""
    description: str = ""
    inputs: dict[str, InputSpec] = Field(default_factory=dict)
    steps: list[StepSpec] = Field(min_length=1, max_length=MAX_STEPS)
    outputs: dict[str, Any] | None = None
    # What a run may spend unless its start says: USD, or a template over the inputs.
    budget_usd: Annotated[float, Field(ge=0, le=10**6)] | str | None = None

    def step(self, step_id: str) -> StepSpec:
        return self.graph.steps[step_id]

    def extension(self, name: str):
        """The value of the workflow-wide plug-in field `name` (e.g. `guards`), or None."""
        return _extension(self.model_extra or {}, name, registry.workflow_field_model)

    @cached_property
    def graph(self) -> Graph:
        return Graph.of(self.steps)


def _own_fields(extra: dict, model: type[BaseModel]) -> dict:
    names = {field.alias or name for name, field in model.model_fields.items()}
    return {key: value for key, value in extra.items() if key in names}


def _extension(extra: dict, name: str, model_of):
    model = model_of(name)
    if model is None or name not in extra:
        return None
    return model.model_validate(extra[name])


@dataclass(frozen=True)
class Publishing:
    """A version being published, for checks that need the database (e.g. that a workflow a step
    calls exists and its author may run it)."""

    slug: str
    author: Any


@dataclass(frozen=True)
class Graph:
    steps: dict[str, StepSpec]
    needs: dict[str, tuple[str, ...]]
    dependents: dict[str, tuple[str, ...]]
    reads: dict[str, frozenset[str]]  # step id -> ids of the steps its templates read

    @classmethod
    def of(cls, steps: list[StepSpec]) -> Graph:
        needs = {}
        for position, step in enumerate(steps):
            if step.needs is not None:
                needs[step.id] = tuple(step.needs)
            else:  # no `needs` means "after the previous step"
                needs[step.id] = (steps[position - 1].id,) if position else ()
        dependents: dict[str, list[str]] = {step.id: [] for step in steps}
        for step_id, required in needs.items():
            for need in required:
                dependents.setdefault(need, []).append(step_id)
        return cls(
            steps={step.id: step for step in steps},
            needs=needs,
            dependents={key: tuple(value) for key, value in dependents.items()},
            reads={step.id: _step_reads(step) for step in steps},
        )

    @property
    def roots(self) -> list[str]:
        return [step_id for step_id, required in self.needs.items() if not required]

    def ancestors(self, step_id: str) -> set[str]:
        seen: set[str] = set()
        stack = list(self.needs.get(step_id, ()))
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(self.needs.get(current, ()))
        return seen


@dataclass(frozen=True)
class SpecError:
    path: str
    message: str


def spec_load_text(source: str | dict) -> dict:
    """Turn a YAML or JSON string (or an already parsed object) into a plain dict, refusing
    what is over the bounds (config.bounds, MAX_STEPS) before anything else looks at it."""
    if isinstance(source, str) and source.strip():
        data = yaml_loaded(source, "spec", top_level_items={"steps": MAX_STEPS})
    elif isinstance(source, dict):
        data = source
    else:
        raise InvalidInput(
            "The spec is empty.", details={"spec": "a YAML or JSON spec is required"}
        )
    if not isinstance(data, dict):
        raise InvalidInput("The spec must be a mapping.", details={"spec": "expected a mapping"})
    steps = data.get("steps")
    if isinstance(steps, list) and len(steps) > MAX_STEPS:
        message = f"at most {MAX_STEPS} steps (this spec has {len(steps)})"
        raise InvalidInput(f"Invalid spec: steps: {message}", details={"steps": [message]})
    json_checked(data, "spec")
    return data


def spec_parse(source: str | dict, *, author=None):
    """Validate a spec completely; return (WorkflowSpec, canonical dict) or raise InvalidInput.

    With an `author`, it is checked as that user publishing it (what its steps may call)."""
    data = spec_load_text(source)
    publishing = Publishing(slug=str(data.get("slug", "")), author=author) if author else None
    try:
        spec = WorkflowSpec.model_validate(data)
    except ValidationError as exc:
        errors = [spec_error_from_pydantic(error) for error in exc.errors()]
        partial = _partial_spec(data)
        if partial is not None:  # report the rules the valid parts break too, in one answer
            spec, placeholders = partial
            errors += _semantic_errors(spec, publishing, skip=placeholders)
        raise spec_invalid(list(dict.fromkeys(errors))) from None
    errors = _semantic_errors(spec, publishing)
    if errors:
        raise spec_invalid(errors)
    canonical = spec.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    return spec, canonical


def spec_checksum(canonical: dict) -> str:
    encoded = json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(encoded).hexdigest()


_parsed_versions: dict[int, WorkflowSpec] = {}


def spec_for_version(version) -> WorkflowSpec:
    """Versions are immutable, so each process parses a version's spec once."""
    spec = _parsed_versions.get(version.pk)
    if spec is None:
        spec = _parsed_versions[version.pk] = WorkflowSpec.model_validate(version.spec)
    return spec


def spec_for_version_id(version_id: int) -> WorkflowSpec:
    """spec_for_version, reading the version only the first time this process needs it."""
    spec = _parsed_versions.get(version_id)
    if spec is None:
        spec = spec_for_version(WorkflowVersion.objects.only("spec").get(pk=version_id))
    return spec


def spec_invalid(errors: list[SpecError]) -> InvalidInput:
    details = {}
    for error in errors:
        details.setdefault(error.path, []).append(error.message)
    first = errors[0]
    return InvalidInput(
        f"Invalid spec: {first.path}: {first.message}"
        + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
        code="invalid_spec",
        details=details,
    )


def spec_error_from_pydantic(error: dict, prefix: str = "") -> SpecError:
    path = prefix
    for part in error["loc"]:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part not in ("function-after",) and not str(part).startswith("function-"):
            path += f".{part}" if path else str(part)
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown field"
    return SpecError(path or "spec", message)


def _partial_spec(data: dict) -> tuple[WorkflowSpec, set[int]] | None:
    """The spec with each invalid step replaced by a placeholder keeping its id and needs (so the
    graph stays whole), and the placeholders' positions; None when not even the ids are there."""
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        return None
    steps, placeholders = [], set()
    for index, raw in enumerate(raw_steps):
        try:
            steps.append(StepSpec.model_validate(raw))
            continue
        except ValidationError:
            placeholders.add(index)
        step_id = raw.get("id") if isinstance(raw, dict) else None
        if not isinstance(step_id, str):
            return None
        needs = raw.get("needs")
        if not (isinstance(needs, list) and all(isinstance(need, str) for need in needs)):
            needs = None
        steps.append(StepSpec.model_construct(id=step_id, needs=needs))
    inputs = {}
    raw_inputs = data.get("inputs")
    for name, raw in raw_inputs.items() if isinstance(raw_inputs, dict) else ():
        try:
            inputs[name] = InputSpec.model_validate(raw)
        except ValidationError:
            inputs[name] = InputSpec()
    outputs = data.get("outputs") if isinstance(data.get("outputs"), dict) else None
    slug = data.get("slug") if isinstance(data.get("slug"), str) else ""
    spec = WorkflowSpec.model_construct(slug=slug, inputs=inputs, steps=steps, outputs=outputs)
    return spec, placeholders


def _semantic_errors(spec: WorkflowSpec, publishing, skip=frozenset()) -> list[SpecError]:
    errors: list[SpecError] = []
    positions: dict[str, int] = {}
    for index, step in enumerate(spec.steps):
        if step.id in positions:
            errors.append(
                SpecError(
                    f"steps[{index}].id",
                    f"duplicate step id '{step.id}' (also steps[{positions[step.id]}])",
                )
            )
        else:
            positions[step.id] = index
    for name in spec.inputs:
        if not re.match(IDENTIFIER, name):
            errors.append(SpecError(f"inputs.{name}", "input names must be identifiers"))
    errors.extend(_plugin_field_errors(spec.model_extra or {}, "", registry.workflow_field_model))
    if isinstance(spec.budget_usd, str):
        try:
            expressions.compile_template(spec.budget_usd)
        except expressions.ExpressionError as exc:
            errors.append(SpecError("budget_usd", str(exc)))
    for index, step in enumerate(spec.steps):
        if index not in skip:
            errors.extend(_step_errors(step, f"steps[{index}]", positions, publishing))
    if errors:
        return errors
    graph = spec.graph
    try:
        TopologicalSorter(graph.needs).prepare()
    except CycleError as exc:
        cycle = exc.args[1]
        errors.append(
            SpecError(f"steps[{positions[cycle[0]]}].needs", "cycle: " + " -> ".join(cycle))
        )
        return errors
    for index, step in enumerate(spec.steps):
        if index not in skip:
            errors.extend(_reference_errors(spec, step, f"steps[{index}]"))
    errors.extend(_template_reference_errors(spec, spec.outputs or {}, "outputs", set(positions)))
    return errors + _plugin_checks(spec, skip)


def _plugin_checks(spec: WorkflowSpec, skip) -> list[SpecError]:
    """What plug-ins' own checks of their fields say, once the fields and the graph are sound."""
    errors = []
    for name in spec.model_extra or {}:
        check = registry.field_check("workflow", name)
        if check is not None:
            errors += check(spec, None, spec.extension(name), name)
    for index, step in enumerate(spec.steps):
        for name in () if index in skip else step.model_extra or {}:
            check = registry.field_check("step", name)
            if check is not None:
                errors += check(spec, step, step.extension(name), f"steps[{index}].{name}")
    return errors


def _step_errors(step: StepSpec, path, positions, publishing) -> list[SpecError]:
    errors = _kind_errors(step, path, publishing)
    for index, need in enumerate(step.needs or []):
        if need not in positions:
            errors.append(SpecError(f"{path}.needs[{index}]", f"unknown step '{need}'"))
        elif need == step.id:
            errors.append(SpecError(f"{path}.needs[{index}]", "a step cannot need itself"))
    if step.repeat and step.foreach:
        errors.append(SpecError(path, "a step cannot have both foreach and repeat"))
    for field_path, source, is_expression in _sources(step, path):
        try:
            if is_expression:
                expressions.compile_expression(source)
            else:
                expressions.compile_template(source)
        except expressions.ExpressionError as exc:
            errors.append(SpecError(field_path, str(exc)))
    return errors


def _kind_errors(step: StepSpec, path: str, publishing) -> list[SpecError]:
    """The step's kind and plug-in fields: exactly one registered kind, every other extra field
    claimed by it or by a plug-in, each valid against its model."""
    extra = step.model_extra or {}
    present = [key for key in extra if registry.executor_for(key) is not None]
    available = ", ".join(registry.kinds())
    if len(present) != 1:
        errors = [SpecError(path, f"needs exactly one of {available}")]
        if len(present) > 1:
            errors = [
                SpecError(path, f"needs exactly one of {available} (found {', '.join(present)})")
            ]
        errors += [
            SpecError(f"{path}.{key}", f"step kind '{key}' is not available (kinds: {available})")
            for key in extra
            if key not in present and registry.step_field_model(key) is None
        ]
        return errors
    executor = registry.executor_for(present[0])
    own = _own_fields(extra, executor.fields)
    errors = [
        SpecError(f"{path}.{key}", "unknown field")
        for key in extra
        if key not in own and registry.step_field_model(key) is None
    ]
    try:
        params = executor.fields.model_validate(own)
    except ValidationError as exc:
        return errors + [spec_error_from_pydantic(error, prefix=path) for error in exc.errors()]
    errors += _plugin_field_errors(extra, path, registry.step_field_model)
    return errors + executor.validate(step, params, path, publishing)


def _plugin_field_errors(extra: dict, path: str, model_of) -> list[SpecError]:
    errors = []
    for key, value in extra.items():
        model = model_of(key)
        field_path = f"{path}.{key}" if path else key
        if model is None:
            if not path:  # a workflow-level field nobody registered
                errors.append(SpecError(field_path, "unknown field"))
            continue
        try:
            model.model_validate(value)
        except ValidationError as exc:
            errors += [spec_error_from_pydantic(error, prefix=field_path) for error in exc.errors()]
    return errors


def _sources(step: StepSpec, path: str):
    """Yield (path, source, is_expression) for every template and expression of a step."""
    if step.when is not None:
        yield f"{path}.when", step.when, True
    if step.foreach is not None:
        yield f"{path}.foreach", step.foreach, True
    if step.repeat is not None:
        yield f"{path}.repeat.until", step.repeat.until, True
    yield from _template_strings(step.with_, f"{path}.with")
    yield from _template_strings(step.set, f"{path}.set")
    # A kind's own fields that are templates too (a human step's prompt), as its executor says.
    executor = registry.executor_for(step.kind)
    for dotted in getattr(executor, "template_fields", ()):
        value = step.model_extra or {}
        for key in dotted.split("."):
            value = value.get(key) if isinstance(value, dict) else None
        yield from _template_strings(value, f"{path}.{dotted}")


def _step_reads(step: StepSpec) -> frozenset[str]:
    reads = set()
    for _, source, is_expression in _sources(step, "step"):
        refs = (
            expressions.expression_references(source)
            if is_expression
            else expressions.references(source)
        )
        reads.update(attribute for root, attribute in refs if root == "steps" and attribute)
    return frozenset(reads)


def _template_strings(value, path):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _template_strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _template_strings(item, f"{path}[{index}]")
    elif isinstance(value, str) and expressions.is_template(value):
        yield path, value, False


def _reference_errors(spec: WorkflowSpec, step: StepSpec, path: str) -> list[SpecError]:
    # Its ancestors, found only if a template reads another step (a walk of the graph each).
    upstream = _Lazy(lambda: spec.graph.ancestors(step.id))
    errors = []
    for field_path, source, is_expression in _sources(step, path):
        refs = (
            expressions.expression_references(source)
            if is_expression
            else expressions.references(source)
        )
        field = field_path.removeprefix(path + ".").split(".")[0].split("[")[0]
        errors.extend(_check_refs(spec, refs, field_path, upstream, step, field))
    return errors


class _Lazy:
    """A set computed on the first membership test."""

    def __init__(self, compute):
        self._compute, self._value = compute, None

    def __contains__(self, item) -> bool:
        if self._value is None:
            self._value = self._compute()
        return item in self._value


def _template_reference_errors(spec, value, path, all_steps) -> list[SpecError]:
    errors = []
    for field_path, source, _ in _template_strings(value, path):
        refs = expressions.references(source)
        errors.extend(_check_refs(spec, refs, field_path, all_steps, None, "outputs"))
    return errors


# Per-execution names, and the fields of a step whose templates are rendered with them.
_SCOPED_NAMES = {
    "item": (("with",), "in `with` of a foreach step"),
    "index": (("with",), "in `with` of a foreach step"),
    "iteration": (("with", "repeat"), "in `with` and `repeat.until` of a repeat step"),
    "output": (("repeat", "set"), "in `repeat.until` and `set`"),
}


def _scoped_name_ok(root: str, step: StepSpec | None, field: str) -> bool:
    fields, _ = _SCOPED_NAMES[root]
    if step is None or field not in fields:
        return False
    if root in ("item", "index"):
        return step.foreach is not None
    if root == "iteration":
        return step.repeat is not None
    return True


def _check_refs(spec, refs, field_path, upstream, step, field) -> list[SpecError]:
    errors = []
    for root, attribute in sorted(refs, key=lambda ref: (ref[0], ref[1] or "")):
        if root not in TEMPLATE_ROOTS:
            errors.append(SpecError(field_path, f"unknown name '{root}'"))
        elif root == "inputs" and attribute is not None and attribute not in spec.inputs:
            errors.append(SpecError(field_path, f"unknown input '{attribute}'"))
        elif root == "steps" and attribute is None:
            errors.append(SpecError(field_path, "read steps by name: steps.<id>.output"))
        elif root == "steps" and attribute not in spec.graph.steps:
            errors.append(SpecError(field_path, f"unknown step '{attribute}'"))
        elif root == "steps" and attribute not in upstream:
            errors.append(
                SpecError(
                    field_path,
                    f"step '{attribute}' does not run before '{step.id}'; add it to needs",
                )
            )
        elif root in _SCOPED_NAMES and not _scoped_name_ok(root, step, field):
            errors.append(
                SpecError(field_path, f"'{root}' is only defined {_SCOPED_NAMES[root][1]}")
            )
    return errors


def _matches_type(value, type_name: str) -> bool:
    if isinstance(value, bool) and type_name != "boolean":
        return False
    return isinstance(value, INPUT_TYPES[type_name])


def inputs_resolve(spec: WorkflowSpec, inputs: Any) -> dict:
    """Apply defaults and check run inputs; raise InvalidInput naming each bad input."""
    if not isinstance(inputs, dict):
        raise InvalidInput("inputs must be an object.", details={"inputs": "expected an object"})
    errors = {}
    resolved = {}
    for name in inputs:
        if name not in spec.inputs:
            errors[f"inputs.{name}"] = "unknown input"
    for name, declared in spec.inputs.items():
        if name in inputs:
            if not _matches_type(inputs[name], declared.type):
                errors[f"inputs.{name}"] = f"must be of type {declared.type}"
            resolved[name] = inputs[name]
        elif declared.required:
            errors[f"inputs.{name}"] = "is required"
        else:
            resolved[name] = declared.default
    if errors:
        first = next(iter(errors.items()))
        raise InvalidInput(f"Invalid inputs: {first[0]} {first[1]}", details=errors)
    return resolved
