"""The `human:` step kind: the step waits on an intervention, opened by opening.step_waiting in
the same transaction; its output, once resolved, is `{decision, data, comment, resolved_by}`."""

import uuid

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from interventions.specs import HumanFields
from workflows.engine import api

PERSON = "person"  # the reason a human step waits
REF_PREFIX = "intervention:"


def intervention_ref(intervention_id) -> str:
    return f"{REF_PREFIX}{intervention_id}"


class HumanExecutor:
    kind = "human"
    fields = HumanFields
    template_fields = ("human.prompt",)

    def validate(self, step, params, path, publishing) -> list[api.SpecError]:
        task, where = params.human, f"{path}.human"
        errors = []
        if task.form is not None and task.type != "input":
            errors.append(api.SpecError(f"{where}.form", "only an input takes a form"))
        if task.approvals > 1 and task.type != "approval":
            errors.append(api.SpecError(f"{where}.approvals", "only an approval takes approvals"))
        if task.expiry_error(task.type):
            errors.append(api.SpecError(f"{where}.on_expiry", task.expiry_error(task.type)))
        if publishing is not None:
            if task.group and not Group.objects.filter(name=task.group).exists():
                errors.append(api.SpecError(f"{where}.group", f"unknown group '{task.group}'"))
            users = get_user_model().objects
            if task.assignee and not users.filter(username=task.assignee).exists():
                errors.append(api.SpecError(f"{where}.assignee", f"unknown user '{task.assignee}'"))
        return errors

    def runs_inline(self, step, params) -> bool:
        return True  # it only parks the step; the intervention's row is written with the park

    def execute(self, context: api.StepContext) -> api.Outcome:
        return api.Wait(reason=PERSON, ref=intervention_ref(uuid.uuid4()))
