"""The engine's door for people (interventions plug in here): handlers hear of every step run that
starts to wait, a failing step with `on_failure: escalate` waits for a decision, reviewers hold a
success for someone to confirm, gates' decisions save their records, and run ends are heard."""

import uuid

import pytest
from pydantic import BaseModel, ConfigDict

from accounts.models import User
from config.errors import InvalidInput
from workflows.engine import api
from workflows.models import Run, RunEvent, RunStatus, StepRun, StepStatus

pytestmark = pytest.mark.django_db

heard: list = []
noting: set[str] = set()  # runs whose end the handler writes an event about


class FlakyFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flaky: str


class Flaky:
    """Fails (not retryably) unless the run's inputs say `ok`."""

    kind, fields = "flaky", FlakyFields

    def validate(self, step, params, path, publishing):
        return []

    def runs_inline(self, step, params):
        return True

    def execute(self, context):
        if context.ctx.get("ok"):
            return api.Done(output="fine")
        raise api.Fail(f"{context.params.flaky} broke", code="broken", retryable=False)


def _waiting_heard(waiting):
    heard.append(("waiting", waiting.step.id, waiting.reason, waiting.ref, waiting.message))
    if waiting.step.id == "fragile":
        waiting.event("test.parked", {"ref": waiting.ref})


def _review(review):
    if review.step.extension("test_review"):
        return api.Wait(reason="review", ref=f"review:{review.step_run_id}")
    return None


def _finished(run_id, status, event):
    heard.append(("finished", run_id, status))
    if run_id in noting:
        event("test.ended", {"status": status})


class ReviewField(BaseModel):
    model_config = ConfigDict(extra="forbid")

    who: str


class RecordingGate:
    """Allows every step of a workflow with `test_recorded:`, saving a row as its record."""

    name = "test-recording"

    def evaluate(self, check):
        if check.spec.extension("test_recorded") is None:
            return None
        return api.Allow(records=(User(username=f"gate-{check.step.id}"),))


class Recorded(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool


api.event_type_register("test.parked", "ref")
api.event_type_register("test.ended", "status")
api.event_type_register("test.noted", "note")
api.executor_register(Flaky())
api.step_waiting_register(_waiting_heard)
api.review_register(_review)
api.run_finished_register(_finished)
api.step_field_register("test_review", ReviewField)
api.workflow_field_register("test_recorded", Recorded)
api.gate_register(RecordingGate())

ESCALATING = """
slug: escalating
steps:
  - id: fragile
    flaky: the vendor
    on_failure: escalate
  - id: after
    needs: [fragile]
    tool: noop
    with: {value: "{{ steps.fragile.output }}"}
"""


@pytest.fixture(autouse=True)
def _fresh():
    heard.clear()


def start(make_workflow, operator, source, **ctx) -> Run:
    run, _ = api.run_start(workflow=make_workflow(source), inputs={}, started_by=operator, ctx=ctx)
    return run


def test_a_failure_under_on_failure_escalate_waits_and_the_handlers_hear_it(
    make_workflow, operator, drain
):
    run = start(make_workflow, operator, ESCALATING)
    drain()

    run.refresh_from_db()
    held = StepRun.objects.get(run=run, step_id="fragile")
    assert (run.status, held.status, held.wait_reason) == (
        RunStatus.WAITING, StepStatus.WAITING, "escalated",
    )  # fmt: skip
    assert held.wait_ref == f"escalation:{held.pk}" and held.error == "the vendor broke"
    assert heard == [("waiting", "fragile", "escalated", held.wait_ref, "the vendor broke")]

    api.step_override(step_run_id=held.pk, ref=held.wait_ref, output="by hand", by="pilot")
    drain()
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED
    assert StepRun.objects.get(run=run, step_id="after").output == "by hand"
    assert heard[-1] == ("finished", str(run.pk), RunStatus.COMPLETED)


def test_failing_an_escalated_step_from_outside_fails_it_without_escalating_again(
    make_workflow, operator, drain
):
    run = start(make_workflow, operator, ESCALATING)
    drain()
    held = StepRun.objects.get(run=run, step_id="fragile")

    api.step_fail(step_run_id=held.pk, ref=held.wait_ref, message="abandoned", by="pilot")

    run.refresh_from_db()
    held.refresh_from_db()
    assert (run.status, held.status) == (RunStatus.FAILED, StepStatus.FAILED)


def test_a_reviewer_holds_a_success_until_it_is_confirmed_or_corrected(
    make_workflow, operator, drain
):
    source = ESCALATING.replace("    on_failure: escalate\n", "    test_review: {who: legal}\n")
    confirmed = start(make_workflow, operator, source, ok=True)
    drain()

    held = StepRun.objects.get(run=confirmed, step_id="fragile")
    assert (held.status, held.wait_reason, held.output) == (StepStatus.WAITING, "review", "fine")
    assert heard == [("waiting", "fragile", "review", f"review:{held.pk}", "")]
    api.step_resume(step_run_id=held.pk, ref=held.wait_ref)
    drain()
    assert StepRun.objects.get(run=confirmed, step_id="after").output == "fine"


def test_a_gate_decision_s_records_are_saved_with_it(make_workflow, operator, drain):
    start(make_workflow, operator, "slug: recorded\ntest_recorded: {enabled: true}\n"
          "steps: [{id: one, tool: noop}, {id: two, tool: noop}]")  # fmt: skip
    drain()

    saved = User.objects.filter(username__startswith="gate-").values_list("username", flat=True)
    assert set(saved) == {"gate-one", "gate-two"}


def test_cancelling_a_run_is_heard(make_workflow, operator, drain):
    run = start(make_workflow, operator, ESCALATING)
    drain()

    api.run_cancel(run_id=run.pk, reason="changed our minds")

    assert heard[-1] == ("finished", str(run.pk), RunStatus.CANCELLED)


def _types(run) -> list[str]:
    return list(RunEvent.objects.filter(run=run).order_by("seq").values_list("type", flat=True))


def test_handlers_write_their_events_with_the_park_and_the_end(make_workflow, operator, drain):
    run = start(make_workflow, operator, ESCALATING)
    drain()
    parked = RunEvent.objects.get(run=run, type="test.parked")
    assert parked.payload == {"ref": StepRun.objects.get(run=run, step_id="fragile").wait_ref}
    noting.add(str(run.pk))

    api.run_cancel(run_id=run.pk)

    types = _types(run)
    assert types.index("step.waiting") < types.index("test.parked")
    ended = RunEvent.objects.get(run=run, type="run.status", payload__to="CANCELLED").seq
    assert ended < RunEvent.objects.get(run=run, type="test.ended").seq
    assert RunEvent.objects.get(run=run, type="test.ended").payload == {"status": "CANCELLED"}


def test_a_plug_in_adds_an_event_of_its_own_type_to_a_run_even_an_ended_one(
    make_workflow, operator, drain
):
    run = start(make_workflow, operator, ESCALATING)
    drain()
    api.run_cancel(run_id=run.pk)

    api.run_event_add(run_id=run.pk, event_type="test.noted", payload={"note": "late"})

    last = RunEvent.objects.filter(run=run).order_by("-seq").first()
    assert (last.type, last.payload, last.seq) == ("test.noted", {"note": "late"}, len(_types(run)))
    with pytest.raises(ValueError, match="not registered"):
        api.run_event_add(run_id=run.pk, event_type="test.unknown", payload={})
    with pytest.raises(api.NotFound):
        api.run_event_add(run_id=uuid.uuid4(), event_type="test.noted", payload={})


def test_runs_visible_is_the_queryset_of_runs_a_user_may_view(make_workflow, operator, make_user):
    run = start(make_workflow, operator, ESCALATING)

    assert list(api.runs_visible(operator)) == [run]
    assert not api.runs_visible(make_user("pilot")).exists()


class AskingTask(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str


class AskingFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    asking: AskingTask


class Asking:
    """Waits for a person, its prompt a template (as a `human:` step's)."""

    kind, fields, template_fields = "asking", AskingFields, ("asking.prompt",)

    def validate(self, step, params, path, publishing):
        return []

    def runs_inline(self, step, params):
        return True

    def execute(self, context):
        return api.Wait(reason="person", ref=f"asking:{context.step_run_id}")


asked: dict = {}


def _asked(waiting):
    if waiting.step.kind == "asking":
        prompt = waiting.step.params.asking.prompt
        asked.update(input=waiting.input, prompt=api.template_render(prompt, waiting.context()))


api.executor_register(Asking())
api.step_waiting_register(_asked)


def test_a_kind_s_template_fields_are_checked_at_publish_and_read_the_steps_before_it(
    make_workflow, operator, drain
):
    source = """slug: asking
steps:
  - {id: first, tool: noop, with: {value: 5}}
  - id: ask
    asking: {prompt: "Is {{ steps.first.output }} right?"}
    with: {x: "{{ steps.first.output }}"}
"""
    with pytest.raises(InvalidInput) as refused:
        make_workflow(source.replace("steps.first.output }} right", "steps.later.output }} ok"))
    assert "steps[1].asking.prompt" in refused.value.details

    start(make_workflow, operator, source)
    drain()

    assert asked == {"input": {"x": 5}, "prompt": "Is 5 right?"}
