"""The six kinds of guardian (DESIGN §5), each an evaluator registered by kind. Rules are lone
expressions of the engine's one sandboxed language, compiled when a version is prepared."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from guardians.evaluation import (
    MISSING,
    Evaluator,
    GuardianError,
    Verdict,
    evaluate,
    evaluator,
    evidence_of,
    path_text,
    prepared,
    read,
)
from guardians.selectors import versions_current
from guardians.specs import MAX_DEPTH
from workflows.engine import api

# What a composite keeps of its members' evidence, as JSON: past it, a member's is summarised.
# A composite within a composite keeps none (its members' outcomes and reasons only).
MAX_MEMBERS_EVIDENCE_CHARS = 20_000
# How far each outcome is from letting the step run as planned: COMPOSITE `all` takes the
# farthest of its members' answers, `any` (when none allows) the nearest.
SEVERITY = {"allow": 0, "route": 1, "escalate": 2, "block": 3}


def _value(label: str, source: str, context: dict):
    try:
        return api.expression_evaluate(source, context)
    except api.TemplateError as exc:
        raise GuardianError(f"config.{label}: {exc}") from None


def _paths_of(*sources: str) -> set[tuple]:
    return set().union(*(api.expression_paths(source) for source in sources))


@evaluator("PASS_THRU")
class PassThru(Evaluator):
    def decide(self, context, depth):
        return Verdict("allow", reason="a pass-through: allows and records")


@evaluator("CRITERIA_GATE")
class CriteriaGate(Evaluator):
    """Every `all` rule and one `any` rule (if there are any) must hold. The rules run as one
    expression listing whether each holds: one call into the sandbox per evaluation (the
    conditional tests each rule inside it, so a rule reading nothing there raises there)."""

    def __init__(self, config):
        super().__init__(config)
        self.rules = [(f"all[{i}]", rule) for i, rule in enumerate(config.all)]
        self.rules += [(f"any[{i}]", rule) for i, rule in enumerate(config.any)]
        self.source = "[" + ", ".join(f"(true if ({rule}) else false)" for _, rule in self.rules)
        self.source += "]"
        api.expression_check(self.source)
        self._paths = sorted(_paths_of(*(rule for _, rule in self.rules)), key=path_text)

    def paths(self):
        return set(self._paths)

    def decide(self, context, depth):
        try:
            values = api.expression_evaluate(self.source, context)
        except api.TemplateError:
            for label, rule in self.rules:  # which rule it was, for the record
                _value(label, rule, context)
            raise
        evidence = evidence_of(self._paths, context)
        required = len(self.config.all)
        broken = next((i for i in range(required) if not values[i]), None)
        alternatives = values[required:]
        if broken is None and (not alternatives or any(alternatives)):
            return Verdict("allow", reason=f"{len(values)} rule(s) hold", evidence=evidence)
        if broken is not None:
            reason = f"all[{broken}] does not hold: {self.config.all[broken]}"
        else:
            reason = "no rule of any holds: " + "; ".join(self.config.any)
        return Verdict(self.config.else_, reason=reason, evidence=evidence)


@evaluator("DIRECTIONAL_FILTER")
class DirectionalFilter(Evaluator):
    """The first rule whose `when` holds names the branch; else `default` (else every branch)."""

    def paths(self):
        return _paths_of(*(rule.when for rule in self.config.rules))

    def routes(self):
        named = {step for rule in self.config.rules for step in rule.route}
        return named | set(self.config.default or ())

    def decide(self, context, depth):
        evidence = {}
        for index, rule in enumerate(self.config.rules):
            evidence.update(evidence_of(_paths_of(rule.when), context))
            if _value(f"rules[{index}].when", rule.when, context):
                reason = f"rules[{index}] matched: {rule.when}"
                return Verdict("route", reason=reason, evidence=evidence, route=tuple(rule.route))
        if self.config.default is None:
            return Verdict("allow", reason="no rule matched: every branch runs", evidence=evidence)
        return Verdict("route", reason="no rule matched: the default branch", evidence=evidence,
                       route=tuple(self.config.default))  # fmt: skip


@evaluator("TTL_CHECK")
class TtlCheck(Evaluator):
    """The value's age (by default the run's) against the TTL."""

    def paths(self):
        return _paths_of(self.config.value) if self.config.value else set()

    def decide(self, context, depth):
        ttl = self.config.ttl_s
        if self.config.value is None:
            age = read(("run", "age_s"), context)
            if not isinstance(age, int | float):
                raise GuardianError("the context has no run.age_s")
            evidence = {"run.age_s": age}
        else:
            value = _value("value", self.config.value, context)
            age = time.time() - _timestamp(value)
            evidence = {**evidence_of(self.paths(), context), "value": value}
        evidence.update(age_s=round(age, 3), ttl_s=ttl)
        if age <= ttl:
            return Verdict("allow", reason=f"{age:.0f} s old, within {ttl:g} s", evidence=evidence)
        reason = f"{age:.0f} s old, over the TTL of {ttl:g} s"
        return Verdict(self.config.else_, reason=reason, evidence=evidence)


def _timestamp(value) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    raise GuardianError(f"config.value: {value!r} is not a timestamp (ISO 8601 or Unix seconds)")


@evaluator("CERBERUS")
class Cerberus(Evaluator):
    """At a join: every head SUCCEEDED, and their outputs agree at `agree_on`."""

    def paths(self):
        return {("steps", head) for head in self.config.heads}

    def heads(self):
        return set(self.config.heads)

    def decide(self, context, depth):
        where = self.config.agree_on
        key = tuple(where.split("."))
        evidence, values, problems = {}, {}, []
        for head in self.config.heads:
            step = read(("steps", head), context)
            status = step.get("status") if isinstance(step, dict) else None
            evidence[f"steps.{head}.status"] = status
            if status != "SUCCEEDED":
                problems.append(f"{head} is {status or 'not run'}")
                continue
            value = read(("output", *key), step)
            evidence[f"steps.{head}.output.{where}"] = None if value is MISSING else value
            if value is MISSING:
                problems.append(f"{head} has no output.{where}")
            else:
                values[head] = value
        agreed = list(values.values())
        if not problems and all(value == agreed[0] for value in agreed):
            reason = f"the heads agree on {where}: {agreed[0]!r}"
            return Verdict("allow", reason=reason, evidence=evidence)
        if not problems:
            problems = [f"the heads disagree on {where}: " + ", ".join(
                f"{head}={value!r}" for head, value in values.items())]  # fmt: skip
        return Verdict(self.config.else_, reason="; ".join(problems), evidence=evidence)


@evaluator("COMPOSITE")
class Composite(Evaluator):
    """Chains the current versions of other guardians: `all` must allow (the farthest answer
    decides), `any` allowing suffices (else the nearest decides), or the `first` that does not
    allow decides (the rest are not asked)."""

    def members(self) -> list:
        current = versions_current(self.config.guardians)
        missing = [slug for slug in self.config.guardians if slug not in current]
        if missing:
            raise GuardianError(f"config.guardians: no guardian '{missing[0]}'")
        return [current[slug] for slug in self.config.guardians]

    def paths(self):
        return set().union(*(prepared(version).paths() for version in self.members()))

    def routes(self):
        return set().union(*(prepared(version).routes() for version in self.members()))

    def heads(self):
        return set().union(*(prepared(version).heads() for version in self.members()))

    def decide(self, context, depth):
        if depth >= MAX_DEPTH:
            raise GuardianError(f"composites nest deeper than {MAX_DEPTH}")
        mode, answers = self.config.mode, []
        for version in self.members():
            answers.append((version, evaluate(version, context, depth=depth + 1)))
            if mode == "first" and answers[-1][1].outcome != "allow":
                break
        evidence = {"members": _members(answers, keep_evidence=depth == 0)}
        allowing = [answer for answer in answers if answer[1].outcome == "allow"]
        others = [answer for answer in answers if answer[1].outcome != "allow"]
        if (mode == "any" and allowing) or not others:
            slugs = ", ".join(version.guardian.slug for version, _ in allowing)
            return Verdict("allow", reason=f"allowed by {slugs}", evidence=evidence)
        if mode == "all":
            others.sort(key=lambda answer: -SEVERITY[answer[1].outcome])
        elif mode == "any":
            others.sort(key=lambda answer: SEVERITY[answer[1].outcome])
        version, verdict = others[0]
        return Verdict(verdict.outcome, reason=f"{version.guardian.slug}: {verdict.reason}",
                       evidence=evidence, route=verdict.route)  # fmt: skip


def _members(answers, *, keep_evidence: bool) -> list[dict]:
    members, budget = [], MAX_MEMBERS_EVIDENCE_CHARS
    for version, verdict in answers:
        member = {"guardian": version.guardian.slug, "version": version.number,
                  "outcome": verdict.outcome, "reason": verdict.reason}  # fmt: skip
        if keep_evidence:
            size = len(json.dumps(verdict.evidence, default=str))
            if size <= budget:
                member["evidence"], budget = verdict.evidence, budget - size
            else:
                member["evidence"] = f"<evidence of {size} characters, left out>"
        members.append(member)
    return members
