"""Guardian specs (DESIGN §5): `{slug, kind, config, on_error, name, description}`, parsed from
YAML/JSON and validated whole through the engine's spec machinery, every error with its path
(`config.all[1]`); each kind's config has a model of its own."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from guardians.models import Kind
from workflows.engine import api

SLUG = r"^[a-z0-9][a-z0-9-]*$"
STEP_ID = r"^[A-Za-z_][A-Za-z0-9_]*$"
# A composite's reach, refused past these when it (or a guardian it chains) is published:
MAX_DEPTH = 10  # composites within composites
MAX_EVALUATIONS = 50  # guardian evaluations beneath one composite, counted through the tree
PATH = r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$"
# What a guardian's expressions may read: the gate's context (engine GateCheck.context).
ROOTS = ("inputs", "state", "ctx", "steps", "run")

Expression = Annotated[str, Field(min_length=1, max_length=2000)]
StepId = Annotated[str, Field(pattern=STEP_ID, max_length=100)]
Slug = Annotated[str, Field(pattern=SLUG, max_length=100)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class PassThru(_Model):
    pass


class CriteriaGate(_Model):
    all: list[Expression] = Field(default_factory=list, max_length=50)
    any: list[Expression] = Field(default_factory=list, max_length=50)
    else_: Literal["block", "escalate"] = Field(default="block", alias="else")

    @model_validator(mode="after")
    def _has_rules(self):
        if not self.all and not self.any:
            raise ValueError("needs `all:` or `any:` rules")
        return self


class Rule(_Model):
    when: Expression
    route: list[StepId] = Field(max_length=100)


class DirectionalFilter(_Model):
    rules: list[Rule] = Field(min_length=1, max_length=50)
    default: list[StepId] | None = Field(default=None, max_length=100)


class TtlCheck(_Model):
    value: Expression | None = None  # a timestamp; None: the run's start
    ttl_s: float = Field(gt=0, le=10 * 365 * 86_400)
    else_: Literal["block", "escalate"] = Field(default="block", alias="else")


class Cerberus(_Model):
    heads: list[StepId] = Field(min_length=2, max_length=20)
    agree_on: str = Field(pattern=PATH, max_length=200)
    else_: Literal["block", "escalate"] = Field(default="escalate", alias="else")

    @model_validator(mode="after")
    def _distinct_heads(self):
        if len(set(self.heads)) != len(self.heads):
            raise ValueError("heads must be distinct")
        return self


class Composite(_Model):
    mode: Literal["all", "any", "first"] = "all"
    guardians: list[Slug] = Field(min_length=1, max_length=20)


CONFIGS: dict[str, type[_Model]] = {
    "PASS_THRU": PassThru,
    "CRITERIA_GATE": CriteriaGate,
    "DIRECTIONAL_FILTER": DirectionalFilter,
    "TTL_CHECK": TtlCheck,
    "CERBERUS": Cerberus,
    "COMPOSITE": Composite,
}
assert set(CONFIGS) == set(Kind.values)


class GuardianSpec(_Model):
    slug: Slug
    kind: Literal[
        "PASS_THRU", "CRITERIA_GATE", "DIRECTIONAL_FILTER", "TTL_CHECK", "CERBERUS", "COMPOSITE"
    ]
    config: dict = Field(default_factory=dict)
    on_error: Literal["block", "escalate", "allow"] = "block"
    name: str = Field(default="", max_length=200)
    description: str = Field(default="", max_length=2000)


def config_parse(kind: str, config: dict) -> _Model:
    """A stored version's config (validated when it was published)."""
    return CONFIGS[kind].model_validate(config)


def guardian_parse(source, *, composites: dict[str, list[str]]) -> tuple[GuardianSpec, dict]:
    """(spec, canonical dict) or InvalidInput naming every error's path. `composites` maps each
    existing guardian's slug to the guardians its current version chains (empty if none)."""
    data = api.spec_load_text(source)
    errors, spec, config = [], None, None
    try:
        spec = GuardianSpec.model_validate(data)
    except ValidationError as exc:
        errors += [api.spec_error_from_pydantic(error) for error in exc.errors()]
    raw_config = data.get("config", {})
    if data.get("kind") in CONFIGS and isinstance(raw_config, dict):
        try:
            config = CONFIGS[data["kind"]].model_validate(raw_config)
        except ValidationError as exc:
            errors += [api.spec_error_from_pydantic(e, prefix="config") for e in exc.errors()]
    if config is not None:
        errors += _expression_errors(config)
    if spec is not None and config is not None:
        errors += _member_errors(spec, config, composites)
    if errors:
        raise api.spec_invalid(list(dict.fromkeys(errors)))
    canonical = spec.model_dump(mode="json", exclude_defaults=True)
    canonical["kind"] = spec.kind
    canonical["config"] = config.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    return spec, canonical


def expressions_of(config: _Model):
    """Yield (path, source) for every expression of a config."""
    if isinstance(config, CriteriaGate):
        for group in ("all", "any"):
            for index, source in enumerate(getattr(config, group)):
                yield f"config.{group}[{index}]", source
    elif isinstance(config, DirectionalFilter):
        for index, rule in enumerate(config.rules):
            yield f"config.rules[{index}].when", rule.when
    elif isinstance(config, TtlCheck) and config.value is not None:
        yield "config.value", config.value


def _expression_errors(config: _Model) -> list[api.SpecError]:
    errors = []
    for path, source in expressions_of(config):
        try:
            api.expression_check(source)
            unknown = sorted({read[0] for read in api.expression_paths(source)} - set(ROOTS))
        except api.TemplateError as exc:
            errors.append(api.SpecError(path, str(exc)))
            continue
        errors += [
            api.SpecError(path, f"unknown name '{name}' (a guardian reads {', '.join(ROOTS)})")
            for name in unknown
        ]
    return errors


def _member_errors(spec: GuardianSpec, config, composites) -> list[api.SpecError]:
    if not isinstance(config, Composite):
        return []
    chains = {**composites, spec.slug: config.guardians}
    errors, seen = [], {}
    for index, member in enumerate(config.guardians):
        path = f"config.guardians[{index}]"
        if member in seen:
            errors.append(api.SpecError(path, f"'{member}' is listed already ({seen[member]})"))
            continue
        seen[member] = path
        if member == spec.slug:
            errors.append(api.SpecError(path, "a guardian cannot chain itself"))
        elif member not in composites:
            errors.append(api.SpecError(path, f"unknown guardian '{member}'"))
        else:
            cycle = _cycle_back(member, spec.slug, chains, [spec.slug, member])
            if cycle:
                errors.append(api.SpecError(path, "cycle: " + " -> ".join(cycle)))
    return errors or _reach_errors(spec.slug, chains, composites)


def _reach_errors(slug: str, chains, before) -> list[api.SpecError]:
    """The composite, and each composite chaining it, must stay within MAX_EVALUATIONS member
    evaluations and MAX_DEPTH levels (those already past them only must not grow)."""
    now, then = _Reach(chains), _Reach(before)
    errors = []
    for composite in [slug, *sorted(_chaining(slug, chains))]:
        evaluations, levels = now.of(composite)
        old_evaluations, old_levels = then.of(composite) if composite in before else (0, 0)
        whose = "it" if composite == slug else f"'{composite}', which chains it,"
        if evaluations > max(MAX_EVALUATIONS, old_evaluations):
            errors.append(api.SpecError("config.guardians", (
                f"{whose} would reach {evaluations} guardian evaluations through its members "
                f"(at most {MAX_EVALUATIONS})"
            )))  # fmt: skip
        if levels > max(MAX_DEPTH, old_levels):
            errors.append(api.SpecError("config.guardians", (
                f"{whose} would nest composites {levels} deep (at most {MAX_DEPTH})"
            )))  # fmt: skip
    return errors


class _Reach:
    """(member evaluations, composite levels) of each guardian under `chains`, memoised."""

    def __init__(self, chains):
        self.chains, self.known = chains, {}

    def of(self, slug: str, trail: frozenset = frozenset()) -> tuple[int, int]:
        if slug not in self.known:
            members = [m for m in self.chains.get(slug, ()) if m not in trail]  # no cycle twice
            if not members:
                return (0, 0)
            reached = [self.of(member, trail | {slug}) for member in members]
            self.known[slug] = (
                sum(1 + evaluations for evaluations, _ in reached),
                1 + max(levels for _, levels in reached),
            )
        return self.known[slug]


def _chaining(slug: str, chains) -> set[str]:
    """Every guardian whose chains lead to `slug`."""
    chained_by: dict[str, set[str]] = {}
    for composite, members in chains.items():
        for member in members:
            chained_by.setdefault(member, set()).add(composite)
    found, todo = set(), [slug]
    while todo:
        for composite in chained_by.get(todo.pop(), ()):
            if composite not in found and composite != slug:
                found.add(composite)
                todo.append(composite)
    return found


def _cycle_back(current: str, target: str, chains, trail: list[str]) -> list[str] | None:
    """The trail from `target` through `current` back to `target`, if the chains lead there."""
    for member in chains.get(current, ()):
        if member == target:
            return [*trail, target]
        if member not in trail:
            found = _cycle_back(member, target, chains, [*trail, member])
            if found:
                return found
    return None
