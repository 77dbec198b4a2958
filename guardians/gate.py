"""Guardians on the engine's gate hook: before a step, the workflow's `guards:` and then the
step's `guard:` are evaluated (the current version of each, at that moment) on the step's
context; each evaluation is a GuardianDecision saved with the engine's decision, and the first
guardian that does not allow decides. At publish, the guardians named must exist, and what they
name must fit the graph: a route's steps need the guarded step, a join's heads run before it."""

from typing import Annotated

from django.db import transaction
from django.utils import timezone
from pydantic import Field, RootModel

from guardians import metrics
from guardians.evaluation import Verdict, evaluate, prepared
from guardians.models import GuardianDecision
from guardians.selectors import versions_current
from guardians.specs import Slug
from workflows.engine import api


class GuardSlugs(RootModel[Annotated[list[Slug], Field(max_length=20)]]):
    """`guard: [slug, ...]` on a step, `guards: [slug, ...]` on the workflow."""


def _guards(check: api.GateCheck) -> list[str]:
    named = [*(check.spec.extension("guards") or GuardSlugs([])).root]
    named += (check.step.extension("guard") or GuardSlugs([])).root
    return list(dict.fromkeys(named))


class GuardiansGate:
    name = "guardians"

    def evaluate(self, check: api.GateCheck):
        slugs = _guards(check)
        if not slugs:
            return None
        versions = versions_current(slugs)
        context = check.context_reading(_steps_read(check.spec, versions.values()))
        records = []
        for slug in slugs:
            version = versions.get(slug)
            if version is None:
                return api.Block(f"guardian '{slug}' does not exist", records=tuple(records))
            verdict = evaluate(version, context)
            records.append(_record(check, version, verdict))
            if verdict.outcome != "allow":
                break
        transaction.on_commit(lambda: metrics.decisions_counted(records))
        return _decision(slug, version, verdict, records)


def _steps_read(spec, versions) -> set[str]:
    """The steps the guardians' rules read; every step when one reads `steps` by a computed key."""
    read = set()
    for version in versions:
        try:
            paths = prepared(version).paths()
        except Exception:  # noqa: BLE001 - evaluating it records what is wrong
            continue
        for path in paths:
            if path[0] == "steps":
                if len(path) == 1:
                    return set(spec.graph.steps)
                read.add(path[1])
    return read


def _record(check, version, verdict: Verdict) -> GuardianDecision:
    return GuardianDecision(
        run_id=check.run_id, step_id=check.step.id, workflow=check.workflow,
        guardian_version=version, outcome=verdict.outcome, reason=verdict.reason[:10_000],
        evidence=verdict.evidence, route=list(verdict.route), error=verdict.error[:10_000],
        at=timezone.now(),
    )  # fmt: skip


def _decision(slug: str, version, verdict: Verdict, records: list):
    record = records[-1]
    details = {"guardian": slug, "version": version.number,
               "decisions": [str(each.pk) for each in records]}  # fmt: skip
    reason = f"guardian '{slug}': {verdict.reason}"
    kept = tuple(records)
    if verdict.outcome == "allow":
        allowed = ", ".join(each.guardian_version.guardian.slug for each in records)
        return api.Allow(f"allowed by {allowed}", details=details, records=kept)
    if verdict.outcome == "route":
        return api.Route(verdict.route, reason=reason, details=details, records=kept)
    if verdict.outcome == "escalate":
        ref = f"guardian:{slug}:{record.pk}"
        return api.Escalate(reason, ref=ref, details=details, records=kept)
    return api.Block(reason, details=details, records=kept)


def guard_check(spec, step, value: GuardSlugs, path: str) -> list[api.SpecError]:
    """At publish: every guardian named exists; on a step, its routes need the step, and the
    steps its rules and heads read run before it; on the workflow (asked before every step),
    it routes nowhere and has no heads."""
    versions = versions_current(value.root)
    errors = []
    for index, slug in enumerate(value.root):
        where = f"{path}[{index}]"
        if slug not in versions:
            errors.append(api.SpecError(where, f"unknown guardian '{slug}'"))
            continue
        errors += [
            api.SpecError(where, f"guardian '{slug}' {problem}")
            for problem in _misfits(spec, step, prepared(versions[slug]))
        ]
    return errors


def _misfits(spec, step, evaluator) -> list[str]:
    routes, heads = evaluator.routes(), evaluator.heads()
    if step is None:
        return ["names the steps of one branch or join: use guard:"] if routes or heads else []
    needing = set(spec.graph.dependents.get(step.id, ()))
    upstream = spec.graph.ancestors(step.id)
    read = {path[1] for path in evaluator.paths() if path[0] == "steps" and len(path) > 1}
    return [
        *(f"routes to '{to}', which does not need '{step.id}'" for to in sorted(routes - needing)),
        *(f"reads head '{head}', which does not run before '{step.id}'"
          for head in sorted(heads - upstream)),
        *(f"reads steps.{other}, which does not run before '{step.id}'"
          for other in sorted(read - upstream - heads)),
    ]  # fmt: skip


def gate_install() -> None:
    api.step_field_register("guard", GuardSlugs, validate=guard_check)
    api.workflow_field_register("guards", GuardSlugs, validate=guard_check)
    api.gate_register(GuardiansGate())
