"""Ask the registered gates about a step about to start (engine.registry.gates)."""

import logging

from django.utils import timezone

from workflows.engine.context import template_context
from workflows.engine.contract import Allow, Block, Decision, Escalate, GateCheck, Route
from workflows.engine.registry import gates
from workflows.engine.transitions import records_save
from workflows.engine.unit import Unit
from workflows.spec import StepSpec

logger = logging.getLogger(__name__)
OUTCOMES = {Allow: "allow", Block: "block", Route: "route", Escalate: "escalate"}


def gates_decide(unit: Unit, step: StepSpec) -> Decision | None:
    """The first decision other than allow, or None when every gate allows or has nothing to
    say. Each decision is a `step.gate` event. A gate that raises blocks the step: a broken
    gate never lets a step through unchecked, nor hangs the run."""
    registered = gates()
    if not registered:
        return None
    unit.lock_run()  # what they read of the run (its cost, say) is current
    check = GateCheck(
        run_id=str(unit.run.pk),
        workflow=unit.run.workflow.slug,
        spec=unit.spec,
        step=step,
        context=lambda reads=(): {
            **template_context(unit.run, unit.spec, step, reads=reads),
            "run": _run_facts(unit),
        },
    )
    for gate in registered:
        try:
            decision = gate.evaluate(check)
        except Exception as exc:
            logger.exception("gate %s failed on step %s", gate.name, step.id)
            decision = Block(f"gate '{gate.name}' failed: {type(exc).__name__}: {exc}")
        if decision is None:
            continue
        if type(decision) not in OUTCOMES:
            decision = Block(f"gate '{gate.name}' answered {decision!r}, not a decision")
        _record(unit, step, gate.name, decision)
        records_save(decision.records)
        if not isinstance(decision, Allow):
            return decision
    return None


def _run_facts(unit: Unit) -> dict:
    run = unit.run
    age = (timezone.now() - run.created_at).total_seconds() if run.created_at else 0.0
    return {"id": str(run.pk), "status": run.status, "cost_usd": float(run.cost_usd), "age_s": age}


def _record(unit: Unit, step: StepSpec, gate: str, decision: Decision) -> None:
    payload = {"step": step.id, "gate": gate, "outcome": OUTCOMES[type(decision)]}
    if decision.reason:
        payload["reason"] = decision.reason
    if decision.details:
        payload["details"] = decision.details
    if isinstance(decision, Route):
        payload["to"] = list(decision.to)
    unit.event("step.gate", payload)
