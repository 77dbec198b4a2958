"""The shipped examples load, and each runs to COMPLETED with its default inputs."""

import time
import uuid
from pathlib import Path

import pytest
from django.core.management import call_command

from workflows.engine.runs import run_start
from workflows.models import RUN_TERMINAL, Run, RunStatus, Workflow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_example(
    slug: str, drain, *, inputs=None, timeout: float = 15.0, statuses=RUN_TERMINAL
) -> Run:
    """Start a run and execute it in this process until it is in one of `statuses`; timers
    (`sleep`) need real time to pass."""
    run, _ = run_start(workflow=Workflow.objects.get(slug=slug), inputs=inputs or {})
    return run_until(run, drain, timeout=timeout, statuses=statuses)


def run_until(run: Run, drain, *, timeout: float = 15.0, statuses=RUN_TERMINAL) -> Run:
    deadline = time.monotonic() + timeout
    while True:
        drain()
        run.refresh_from_db()
        if run.status in statuses or time.monotonic() > deadline:
            return run
        time.sleep(0.05)


@pytest.fixture
def examples(db, make_user, settings):
    # Answers an earlier invocation cached (risk-analyst keeps them 5 min) must not count here.
    settings.CACHES = {"default": {**settings.CACHES["default"], "KEY_PREFIX": uuid.uuid4().hex}}
    make_user(superuser=True, username="admin")
    call_command("load_workflows", str(EXAMPLES), verbosity=0)


def test_every_example_loads_as_version_1(examples):
    loaded = dict(Workflow.objects.values_list("slug", "current_version__number"))

    assert loaded == {
        "batch-replies": 1,
        "contract-review": 1,
        "format-reply": 1,
        "release-readiness": 1,
        "triage-ticket": 1,
    }
    for workflow in Workflow.objects.all():
        assert workflow.name and workflow.description


def test_format_reply_renders_a_signed_reply(examples, drain):
    run = run_example("format-reply", drain)

    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result == {
        "text": "Hi there,\n\nThanks for reaching out.\n\nThe support team",
        "tone": "friendly",
    }


def test_triage_ticket_escalates_and_replies_through_the_sub_workflow(examples, drain):
    run = run_example("triage-ticket", drain)

    assert run.status == RunStatus.COMPLETED, run.error
    result = run.result
    assert result["status"] == "escalated"
    assert result["customer"] == "Ada Lovelace"
    assert result["priority"] == "high"
    assert result["escalated_to"] == "tier-2"
    assert result["tags"] == ["#billing", "#refund", "#duplicate-charge"]
    assert result["reply"].startswith("Dear Ada Lovelace,")  # gold tier: formal
    assert "A specialist from tier-2 will call you" in result["reply"]
    assert run.state == {"escalated_to": "tier-2"}
    child = run.child_runs.get()
    assert child.workflow.slug == "format-reply"
    assert child.status == RunStatus.COMPLETED


def test_triage_ticket_skips_escalation_for_a_normal_ticket(examples, drain):
    ticket = {
        "id": "T-7",
        "subject": "Question",
        "priority": "low",
        "customer": {"name": "Bob", "tier": "basic"},
        "tags": [],
    }

    run = run_example("triage-ticket", drain, inputs={"ticket": ticket})

    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result["escalated_to"] is None
    assert run.result["status"] == "answered"
    assert run.result["tags"] == []
    assert run.result["reply"].startswith("Hi Bob,")
    assert "within one working day" in run.result["reply"]
    assert run.run_steps.get(step_id="escalate").status == "SKIPPED"


def test_batch_replies_runs_one_child_per_customer_in_order(examples, drain):
    run = run_example("batch-replies", drain)

    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result["batch_size"] == 3
    assert [text.split(",")[0] for text in run.result["replies"]] == [
        "Dear Grace Hopper",
        "Hi Linus",
        "Dear Margaret Hamilton",
    ]
    assert "tones: formal, friendly, formal" in run.result["digest"]
    assert run.child_runs.filter(status=RunStatus.COMPLETED).count() == 3


def test_release_readiness_polls_until_green_then_announces(examples, drain):
    run = run_example("release-readiness", drain, inputs={"settle_s": 0.2})

    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result["artifact"] == "chameleon-1.4.0.tar.gz"
    assert run.result["ci_polls"] == 3
    assert run.step_runs.filter(step_id="wait_for_ci").count() == 3
    assert "CI green after 3 polls, smoke tests passed" in run.result["announcement"]


def test_a_run_whose_last_step_waits_on_a_sub_workflow_completes(examples, drain, make_workflow):
    make_workflow("slug: ends-with-child\nsteps:\n  - id: reply\n    workflow: format-reply\n")

    run = run_example("ends-with-child", drain, timeout=2.0)

    assert run.status == RunStatus.COMPLETED


def test_contract_review_escalates_a_risky_contract_until_a_pilot_answers(
    examples, drain, make_user
):
    from accounts.models import AuditEntry
    from agents.models import LLMCall
    from guardians.models import GuardianDecision
    from interventions.models import Intervention
    from tests.workflows.test_api import client_for

    run = run_example("contract-review", drain, timeout=2, statuses={"WAITING"})

    assert run.status == RunStatus.WAITING, run.error
    decision = GuardianDecision.objects.get(run_id=run.pk)
    assert (decision.outcome, decision.step_id) == ("escalate", "sign")
    intervention = Intervention.objects.get(run_id=run.pk)
    assert (intervention.type, intervention.group.name) == ("escalation", "pilot")
    calls = LLMCall.objects.filter(run_id=run.pk)
    assert sorted(calls.values_list("model", "simulated", "outcome")) == [
        ("echo-v1", True, "ok"),
        ("risk-v1", True, "ok"),
    ]

    pilot = client_for(make_user("pilot"))
    queue = pilot.get("/api/interventions/").json()["results"]
    answer = pilot.post(
        f"/api/interventions/{intervention.pk}/resolve/",
        {"decision": "retry", "comment": "Legal accepts the termination clause."},
        format="json",
    )
    run = run_until(run, drain, timeout=5)

    assert [item["id"] for item in queue] == [str(intervention.pk)]
    assert answer.status_code == 200, answer.json()
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result["risk"] == 7
    assert run.result["signed"].startswith("Signed. Risk 7/10:")
    assert run.cost_usd == 0 and run.budget_usd == 1
    acts = set(
        AuditEntry.objects.filter(object_id=str(intervention.pk)).values_list("action", flat=True)
    )
    assert {"intervention.open", "intervention.resolve"} <= acts
