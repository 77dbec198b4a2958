"""Run events: the run's history, audit trail and live feed. Made only through Unit.event,
numbered and written at the end of the unit of work (engine.unit), broadcast after commit.

Every step event carries `step`, `iteration` and `attempt` (below: "ref"). The payloads:

| type             | payload                                                                 |
|------------------|-------------------------------------------------------------------------|
| run.created      | workflow, version, parent_run (child runs only)                         |
| run.status       | from, to, reason (when ended with one, or "retried"), by (a retry)      |
| run.retried      | by, steps (the step ids given a fresh attempt), step (the one retried   |
|                  | from, or null), error (why the run had failed)                          |
| run.cost         | added_usd, cost_usd (the run's total), step                             |
| step.queued      | ref, due_at (when not due at once)                                      |
| step.started     | ref, worker, took_over_from (a takeover after an expired lease)         |
| step.succeeded   | ref, output (or output_truncated), by (when moved from outside)         |
| step.failed      | ref, error, code, by                                                    |
| step.waiting     | ref, reason, wait_ref, wake_at (timers)                                 |
| step.skipped     | ref, reason, by                                                         |
| step.cancelled   | ref, reason                                                             |
| step.completed   | step, status, output (or output_truncated), error or reason             |
| step.gate        | step, gate, outcome (allow/block/route/escalate), reason, details, to  |

A FAILED run goes back to RUNNING only through an operator's retry (engine.retry): `run.retried`
follows its `run.status` FAILED -> RUNNING, then a `step.queued` per fresh attempt.

`step.*` events but `step.completed` and `step.gate` are one execution's (a StepRun's); a step
(RunStep) completes once, when all its executions are done. `by` names who moved a step from
outside (api.step_resume and its kin).
"""

EVENT_TYPES = (
    "run.created",
    "run.status",
    "run.cost",
    "run.retried",
    "step.queued",
    "step.started",
    "step.succeeded",
    "step.failed",
    "step.waiting",
    "step.skipped",
    "step.cancelled",
    "step.completed",
    "step.gate",
)


def event_message(run_id: str, seq: int, event_type: str, payload: dict, at) -> dict:
    """An event as the live feed and the API show it."""
    return {"run": run_id, "seq": seq, "type": event_type, "payload": payload, "at": at.isoformat()}
