"""What the engine tells this app (workflows.engine.api hooks), each inside its transaction:
a step run that starts to wait on a person opens an intervention, a step's success may be held
for a correction (or recorded for a review), and a run that ends cancels what waited on it.

So an intervention exists exactly when its step waits, and is cancelled exactly when its run
ends: the run's lock serializes both with every resolution (services)."""

import uuid

from django.contrib.auth import get_user_model
from django.utils import timezone

from interventions.executor import PERSON, REF_PREFIX, intervention_ref
from interventions.lifecycle import intervention_recorded, intervention_transition
from interventions.models import (
    ACTIVE,
    Intervention,
    InterventionType,
    Notification,
    Priority,
    Source,
    Status,
)
from interventions.notifications import notifications_record, warn_at
from interventions.selectors import group_named
from interventions.specs import EscalationTask, HumanTask, Task, duration
from workflows.engine import api

ESCALATED = "escalated"  # the engine's reason for a gate's Escalate and on_failure: escalate
CORRECTION = "correction"  # the reason a step's success waits for a correction


def step_waiting(waiting: api.Waiting) -> None:
    """Open the intervention a waiting step run needs, if it is ours to open."""
    step = waiting.step
    if waiting.reason == ESCALATED:
        task = step.extension("escalation") or EscalationTask()
        context = {"message": waiting.message, "details": waiting.details}
        if waiting.output is not None:
            context["output"] = waiting.output
        _open(waiting, uuid.uuid4(), task, InterventionType.ESCALATION, Source.ESCALATED, context)
    elif waiting.ref.startswith(REF_PREFIX) and waiting.reason == PERSON and step.kind == "human":
        task = step.params.human
        context = {"input": waiting.input}
        if task.type == InterventionType.CORRECTION:
            context["proposed"] = waiting.input
        _open(waiting, waiting.ref.removeprefix(REF_PREFIX), task, task.type, Source.HUMAN,
              context)  # fmt: skip
    elif waiting.ref.startswith(REF_PREFIX) and waiting.reason == CORRECTION:
        context = {"proposed": waiting.output}
        _open(waiting, waiting.ref.removeprefix(REF_PREFIX), step.extension("review"),
              InterventionType.CORRECTION, Source.REVIEW, context)  # fmt: skip


def step_reviewed(review: api.Review) -> api.Wait | None:
    """Hold a success for a correction; record a review without holding (None)."""
    task = review.step.extension("review")
    if task is None:
        return None
    if task.type == CORRECTION:
        return api.Wait(reason=CORRECTION, ref=intervention_ref(uuid.uuid4()))
    intervention_open(
        intervention_id=uuid.uuid4(), run_id=review.run_id, step_run_id=review.step_run_id,
        step=review.step, iteration=review.iteration, type=InterventionType.REVIEW,
        source=Source.REVIEW, task=task, wait_ref="", template_context=review.context(),
        context={"output": review.output}, event=review.event,
    )  # fmt: skip
    return None


def run_finished(run_id: str, status: str, event) -> None:
    """Cancel the run's open interventions that wait on it (a review of a completed run stays:
    nothing waits on it). Rows a resolution holds are skipped: it finds the run ended and
    cancels its own (services.intervention_resolve)."""
    active = Intervention.objects.select_for_update(skip_locked=True).filter(
        run_id=run_id, status__in=ACTIVE
    )
    if status != "CANCELLED":
        active = active.exclude(wait_ref="")
    for intervention in active:
        intervention_transition(intervention, Status.CANCELLED, act="cancel", actor=None,
                                event=event, reason=f"its run ended {status}")  # fmt: skip


def _open(waiting: api.Waiting, intervention_id, task: Task, type_: str, source: str, context):
    intervention_open(
        intervention_id=intervention_id, run_id=waiting.run_id, step_run_id=waiting.step_run_id,
        step=waiting.step, iteration=waiting.iteration, type=type_, source=source, task=task,
        wait_ref=waiting.ref, template_context=waiting.context(), context=context,
        event=waiting.event,
    )  # fmt: skip


def intervention_open(
    *, intervention_id, run_id, step_run_id, step, iteration, type, source, task: Task,
    wait_ref: str, template_context: dict, context: dict, event,
) -> Intervention:  # fmt: skip
    """Write the intervention, its audit entry, its `intervention.opened` event and its
    notifications, in the engine's transaction (`event` is its writer)."""
    now = timezone.now()
    due_at = now + duration(task.due_in) if task.due_in else None
    assignee = get_user_model().objects.filter(username=task.assignee).first()
    notify = step.extension("notify")
    intervention = Intervention(
        id=uuid.UUID(str(intervention_id)), run_id=run_id, step_run_id=step_run_id, step_id=step.id,
        iteration=iteration, workflow=template_context["ctx"]["workflow"], type=type,
        source=source, priority=Priority[task.priority.upper()], assignee=assignee,
        group=group_named(task.group), prompt=_prompt(task, template_context),
        context={"inputs": template_context["inputs"], "steps": template_context["steps"],
                 **context},
        form=getattr(task, "form", None),
        due_at=due_at, warn_at=warn_at(now, due_at), on_expiry=task.on_expiry or "",
        notify=notify.model_dump(exclude_defaults=True) if notify else {},
        approvals_required=getattr(task, "approvals", 1), wait_ref=wait_ref, created_at=now,
    )  # fmt: skip
    intervention.save(force_insert=True)
    intervention_recorded(
        intervention, "open", actor=None, event=event, priority=task.priority, group=task.group,
        assignee=task.assignee, due_at=intervention.due_at and intervention.due_at.isoformat(),
    )  # fmt: skip
    notifications_record(intervention, event=Notification.Event.OPEN)
    return intervention


def _prompt(task: Task, template_context: dict) -> str:
    """A human step's prompt is a template (checked at publish); other prompts are text."""
    if not isinstance(task, HumanTask):
        return task.prompt
    try:
        return str(api.template_render(task.prompt, template_context))
    except api.TemplateError as exc:  # a value the template could not take: say so, go on
        return f"{task.prompt}\n(could not be rendered: {exc})"
