"""The engine's public door (workflows.engine.api): kinds, gates, outside services, costs, and
the guide's worked example (workflows/engine/README.md), run as written."""

import re
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel, ConfigDict

from config.errors import Conflict, InvalidInput
from workflows.engine import api
from workflows.engine.registry import event_types, executor_for
from workflows.engine.runner import step_run_execute
from workflows.models import Run, RunEvent, RunStatus, RunStep, StepRun, StepStatus, Workflow
from workflows.spec import spec_checksum

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "workflows" / "engine" / "README.md"


def _guide_blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", GUIDE.read_text(), re.S)


@pytest.fixture(scope="session", autouse=True)
def guide_plugins():
    """Register the guide's example kind and gate, exactly as the guide writes them."""
    if executor_for("greet") is None:
        exec(compile(_guide_blocks("python")[0], str(GUIDE), "exec"), {})


class ParkFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    park: str


class Park:
    """A leased kind that waits for a person (as `human:` steps will)."""

    kind, fields = "park", ParkFields

    def validate(self, step, params, path, publishing):
        return []

    def runs_inline(self, step, params):
        return False

    def execute(self, context):
        return api.Wait(reason="person", ref=f"{context.params.park}:{context.step_run_id}")


class CostlyFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    costly: str  # "fail", "fatal" or "skip"


class Costly:
    kind, fields = "costly", CostlyFields

    def validate(self, step, params, path, publishing):
        return []

    def runs_inline(self, step, params):
        return True

    def execute(self, context):
        if context.params.costly == "skip":
            return api.Skip("nothing to do", degraded=True, cost_usd=0.5)
        raise api.Fail("the vendor said no", code="vendor", cost_usd=0.1,
                       retryable=context.params.costly == "fail")  # fmt: skip


class Ceiling(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_usd: float


class CeilingGate:
    """A workflow-wide gate: asked before every step of a workflow with `test_ceiling:`."""

    name = "test-ceiling"

    def evaluate(self, check):
        ceiling = check.spec.extension("test_ceiling")
        if ceiling is None:
            return None
        if ceiling.max_usd < 0:
            raise RuntimeError("a negative ceiling")
        if check.context["run"]["cost_usd"] >= ceiling.max_usd:
            return api.Block(f"over the workflow's ceiling of {ceiling.max_usd}")
        return None


api.executor_register(Park())
api.executor_register(Costly())
api.workflow_field_register("test_ceiling", Ceiling)
api.gate_register(CeilingGate())


def start(make_workflow, operator, source) -> Run:
    run, _ = api.run_start(workflow=make_workflow(source), inputs={}, started_by=operator)
    return run


def statuses(run) -> dict:
    return dict(RunStep.objects.filter(run=run).values_list("step_id", "status"))


def gate_events(run) -> list[dict]:
    return list(
        run.events.filter(type="step.gate").order_by("seq").values_list("payload", flat=True)
    )


def test_the_guide_s_example_routes_and_costs_as_it_says(make_workflow, operator, drain):
    run = start(make_workflow, operator, _guide_blocks("yaml")[0])
    drain()
    run.refresh_from_db()

    assert run.status == RunStatus.COMPLETED
    assert statuses(run) == {
        "hello": "SUCCEEDED", "gated": "SUCCEEDED", "left": "SUCCEEDED", "right": "SKIPPED",
    }  # fmt: skip
    assert RunStep.objects.get(run=run, step_id="right").error == "not routed to by 'gated'"
    assert run.result["hello"] == {"text": "Hello, Ada!"}
    assert run.cost_usd == Decimal("0.75")  # three greetings ran
    assert gate_events(run) == [
        {"step": "gated", "gate": "checkpoint", "outcome": "route", "to": ["left"],
         "reason": "as the checkpoint says"},
    ]  # fmt: skip


def test_a_gate_that_blocks_fails_the_step_without_running_it(make_workflow, operator, drain):
    run = start(make_workflow, operator, """
slug: blocked
steps:
  - {id: hello, greet: Ada}
  - {id: costly, greet: Bob, checkpoint: {max_cost_usd: 0.1}}
""")  # fmt: skip
    drain()
    run.refresh_from_db()

    assert run.status == RunStatus.FAILED
    assert run.error == "the run has cost 0.25, over 0.1"
    assert not StepRun.objects.filter(run=run, step_id="costly").exists()
    assert gate_events(run)[0]["outcome"] == "block"


CEILING = """
slug: ceiling
test_ceiling: {{max_usd: {max_usd}}}
steps:
  - {{id: a, greet: A}}
  - {{id: b, greet: B}}
  - {{id: c, greet: C}}
"""


def test_a_workflow_wide_gate_is_asked_before_every_step(make_workflow, operator, drain):
    run = start(make_workflow, operator, CEILING.format(max_usd=0.5))
    drain()
    run.refresh_from_db()

    assert run.status == RunStatus.FAILED
    assert statuses(run) == {"a": "SUCCEEDED", "b": "SUCCEEDED", "c": "FAILED"}
    assert run.error == "over the workflow's ceiling of 0.5"
    assert run.cost_usd == Decimal("0.5")


def test_a_gate_that_raises_blocks_the_step_and_says_why(make_workflow, operator, drain):
    run = start(make_workflow, operator, CEILING.format(max_usd=-1))
    drain()
    run.refresh_from_db()

    assert run.status == RunStatus.FAILED
    assert run.error == "gate 'test-ceiling' failed: RuntimeError: a negative ceiling"


def test_workflow_wide_fields_are_validated_and_unknown_ones_refused(make_workflow):
    with pytest.raises(InvalidInput) as caught:
        make_workflow(
            "slug: w\ntest_ceiling: {max_usd: lots}\ncolour: red\nsteps: [{id: a, greet: A}]\n"
        )
    assert set(caught.value.details) == {"test_ceiling.max_usd", "colour"}
    assert caught.value.details["colour"] == ["unknown field"]


HELD = """
slug: held
steps:
  - {id: risky, greet: Eve, checkpoint: {hold: true}}
  - {id: after, greet: "{{ steps.risky.output }}"}
"""


def _held(make_workflow, operator, drain) -> tuple[Run, StepRun]:
    run = start(make_workflow, operator, HELD)
    drain()
    run.refresh_from_db()
    return run, StepRun.objects.get(run=run, step_id="risky")


def test_an_escalating_gate_holds_the_step_until_retried_from_outside(
    make_workflow, operator, drain
):
    run, hold = _held(make_workflow, operator, drain)
    assert run.status == RunStatus.WAITING
    assert (hold.status, hold.attempt, hold.wait_reason, hold.wait_ref) == (
        StepStatus.WAITING, 0, "escalated", "checkpoint:risky",
    )  # fmt: skip

    api.step_retry(step_run_id=hold.pk, ref="checkpoint:risky", by="pilot")
    drain()
    run.refresh_from_db()

    assert run.status == RunStatus.COMPLETED
    assert run.result["risky"] == {"text": "Hello, Eve!"}
    attempts = StepRun.objects.filter(run=run, step_id="risky").order_by("attempt")
    assert list(attempts.values_list("attempt", "status")) == [(0, "CANCELLED"), (1, "SUCCEEDED")]


@pytest.mark.parametrize(
    ("service", "kwargs", "run_status", "step_status"),
    [
        (api.step_override, {"output": "edited"}, RunStatus.COMPLETED, StepStatus.SUCCEEDED),
        (api.step_resume, {"output": "approved"}, RunStatus.COMPLETED, StepStatus.SUCCEEDED),
        (api.step_skip, {"reason": "not needed"}, RunStatus.COMPLETED, StepStatus.SKIPPED),
        (api.step_fail, {"message": "rejected"}, RunStatus.FAILED, StepStatus.FAILED),
    ],
)
def test_a_held_step_is_decided_from_outside_without_running(
    make_workflow, operator, drain, service, kwargs, run_status, step_status
):
    run, hold = _held(make_workflow, operator, drain)

    service(step_run_id=hold.pk, ref="checkpoint:risky", **kwargs)
    drain()
    run.refresh_from_db()

    assert run.status == run_status
    assert statuses(run)["risky"] == step_status
    assert StepRun.objects.filter(run=run, step_id="risky").count() == 1  # it never ran


def test_a_stale_or_second_answer_is_a_conflict_and_changes_nothing(make_workflow, operator, drain):
    run, hold = _held(make_workflow, operator, drain)
    events = run.events.count()

    with pytest.raises(Conflict, match="not waiting on 'checkpoint:other'"):
        api.step_resume(step_run_id=hold.pk, ref="checkpoint:other", output=1)
    assert run.events.count() == events
    api.step_resume(step_run_id=hold.pk, ref="checkpoint:risky", output=1)
    with pytest.raises(Conflict, match="is SUCCEEDED"):
        api.step_resume(step_run_id=hold.pk, ref="checkpoint:risky", output=2)

    hold.refresh_from_db()
    assert hold.output == 1


def test_resuming_a_waiting_step_moves_the_run_on_and_dispatches_at_commit(
    make_workflow, operator, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    monkeypatch.setattr("workflows.engine.dispatch.dispatch", lambda *args, **kw: sent.append(args))
    run = start(make_workflow, operator, """
slug: parked
steps:
  - {id: ask, park: pilot}
  - {id: after, greet: "{{ steps.ask.output.name }}"}
""")  # fmt: skip
    ask = StepRun.objects.get(run=run, step_id="ask")
    assert step_run_execute(run_id=run.pk, step_run_id=ask.pk) == "waiting"
    run.refresh_from_db()
    assert run.status == RunStatus.WAITING

    with django_capture_on_commit_callbacks(execute=True):
        api.step_resume(step_run_id=ask.pk, ref=f"pilot:{ask.pk}", output={"name": "Ann"}, by="ann")

    run.refresh_from_db()
    after = StepRun.objects.get(run=run, step_id="after")
    assert run.status == RunStatus.RUNNING
    assert sent[-1][:2] == (str(run.pk), after.pk)  # sent at commit, no sweep in between
    succeeded = run.events.get(type="step.succeeded", payload__step="ask").payload
    assert succeeded["by"] == "ann"


def test_failed_attempts_cost_too_and_a_fatal_failure_is_not_retried(
    make_workflow, operator, drain
):
    retried = start(make_workflow, operator, """
slug: flaky-vendor
steps: [{id: call, costly: fail, retry: {max_attempts: 3, backoff_s: 0}}]
""")  # fmt: skip
    fatal = start(make_workflow, operator, """
slug: fatal-vendor
steps: [{id: call, costly: fatal, retry: {max_attempts: 3, backoff_s: 0}}]
""")  # fmt: skip
    drain()
    retried.refresh_from_db()
    fatal.refresh_from_db()

    assert (retried.status, retried.cost_usd) == (RunStatus.FAILED, Decimal("0.3"))
    assert (fatal.status, fatal.cost_usd) == (RunStatus.FAILED, Decimal("0.1"))
    assert StepRun.objects.filter(run=fatal).get().error_code == "vendor"


def test_a_skip_outcome_skips_the_step_and_marks_the_run_degraded_and_what_needs_it_goes_on(
    make_workflow, operator, drain
):
    run = start(make_workflow, operator, """
slug: skipper
steps:
  - {id: optional, costly: skip}
  - {id: other, needs: [], greet: Yan}
  - {id: after, needs: [optional, other], greet: Zoe}
  - {id: only_after_optional, needs: [optional], greet: Zed}
""")  # fmt: skip
    drain()
    run.refresh_from_db()

    assert run.status == RunStatus.COMPLETED
    assert run.degraded
    assert run.cost_usd == Decimal("1.0")  # the skip's 0.5 and two greetings
    assert statuses(run) == {
        "optional": "SKIPPED", "other": "SUCCEEDED", "after": "SUCCEEDED",
        "only_after_optional": "SKIPPED",
    }  # fmt: skip


def test_a_kind_s_and_a_plugin_field_s_errors_are_reported_with_their_paths(make_workflow):
    with pytest.raises(InvalidInput) as caught:
        make_workflow("""
slug: bad-greetings
steps:
  - {id: a, greet: "  "}
  - {id: b, greet: 5}
  - {id: c, greet: Al, checkpoint: {hold: maybe, colour: red}}
  - {id: d, greet: Al, tool: noop}
""")  # fmt: skip
    details = caught.value.details
    assert details["steps[0].greet"] == ["must name someone"]
    assert details["steps[1].greet"] == ["Input should be a valid string"]
    assert set(details) >= {"steps[2].checkpoint.hold", "steps[2].checkpoint.colour"}
    assert "found greet, tool" in details["steps[3]"][0]


def test_a_step_whose_kind_is_unknown_at_run_time_fails_with_a_clear_error(
    make_workflow, operator, drain
):
    workflow = make_workflow("slug: gone\nsteps:\n  - {id: a, greet: Ann}\n")
    canonical = {"slug": "gone", "steps": [{"id": "a", "summon": "x"}]}  # a plug-in removed since
    version = workflow.versions.create(
        number=2, spec=canonical, source="", checksum=spec_checksum(canonical),
        published_by=operator,
    )  # fmt: skip
    Workflow.objects.filter(pk=workflow.pk).update(current_version=version)
    run, _ = api.run_start(workflow=Workflow.objects.get(pk=workflow.pk), inputs={})

    drain()
    run.refresh_from_db()

    assert run.status == RunStatus.FAILED
    assert "step kind 'summon' is not available" in run.error
    [step_run] = StepRun.objects.filter(run=run)  # failed once, not redelivered forever
    assert (step_run.status, step_run.error_code) == (StepStatus.FAILED, "unknown_kind")


def test_apps_outside_workflows_import_only_the_engine_s_public_module():
    engine_import = re.compile(
        r"^\s*(from|import)\s+workflows\.engine(\.(?!api\b)\w+|\s+import\s+(?!api\b))", re.M
    )
    offenders = []
    for app in ("accounts", "agents", "guardians", "interventions", "config"):
        for path in (ROOT / app).rglob("*.py"):
            if engine_import.search(path.read_text()):
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


def test_the_guide_s_yaml_is_a_valid_spec():
    assert yaml.safe_load(_guide_blocks("yaml")[0])["slug"] == "greetings"


def test_every_event_the_engine_writes_is_documented(make_workflow, operator, drain):
    runs = [start(make_workflow, operator, _guide_blocks("yaml")[0])]
    runs.append(start(make_workflow, operator, HELD))
    runs.append(start(make_workflow, operator, CEILING.format(max_usd=0.3)))
    drain()
    hold = StepRun.objects.get(run=runs[1], step_id="risky")
    api.step_retry(step_run_id=hold.pk, ref="checkpoint:risky")
    drain()

    written = set(RunEvent.objects.filter(run__in=runs).values_list("type", flat=True))
    assert written <= set(api.EVENT_TYPES) | set(event_types())  # plug-ins' are registered
    assert {"step.gate", "run.cost", "step.waiting", "step.cancelled"} <= written


def test_the_engine_keeps_no_function_of_its_own_in_the_database():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_proc WHERE proname LIKE 'chameleon%%'")
        assert cursor.fetchone() == (0,)


def test_retrying_a_held_empty_foreach_finishes_it_and_moves_on(make_workflow, operator, drain):
    run = start(make_workflow, operator, """
slug: held-empty
steps:
  - {id: each, foreach: "[]", greet: X, checkpoint: {hold: true}}
  - {id: after, greet: Y}
""")  # fmt: skip
    drain()
    hold = StepRun.objects.get(run=run, step_id="each")

    assert api.step_retry(step_run_id=hold.pk, ref="checkpoint:each") is None
    drain()
    run.refresh_from_db()

    assert run.status == RunStatus.COMPLETED
    assert statuses(run) == {"each": "SUCCEEDED", "after": "SUCCEEDED"}


@pytest.mark.parametrize("name", ["when", "with", "retry", "greet"])
def test_a_plugin_cannot_claim_the_engine_s_own_step_fields_or_a_kind_s_key(name):
    with pytest.raises(ValueError, match=f"step field '{name}'"):
        api.step_field_register(name, Ceiling)
