"""What an answer may say for each type of intervention, and what it does to the waiting step
through the engine's door."""

from jsonschema.validators import validator_for

from config.errors import InvalidInput
from interventions.models import Intervention, InterventionType, Source
from workflows.engine import api

DECISIONS = {
    InterventionType.APPROVAL: ("approve", "reject"),
    InterventionType.INPUT: ("submit",),
    InterventionType.CORRECTION: ("confirm", "edit"),
    InterventionType.ESCALATION: ("retry", "skip", "abort", "override"),
    InterventionType.REVIEW: ("approve", "reject"),
}
WITH_OUTPUT = ("edit", "override")  # decisions that give the step the answer's `output`


def resolution_checked(intervention: Intervention, *, decision, data, output, comment) -> dict:
    """The answer as recorded ({decision, data, output, comment}), or InvalidInput naming
    what is wrong: a decision the type does not take, a missing output, data off the form."""
    allowed = DECISIONS[intervention.type]
    if decision is None and len(allowed) == 1:
        decision = allowed[0]
    if decision not in allowed:
        article = "An" if intervention.type[0] in "aeiou" else "A"
        given = "no decision" if decision is None else f"not {decision!r}"
        message = f"{article} {intervention.type} takes {' or '.join(allowed)}; {given} was given."
        raise InvalidInput(message, details={"decision": message})
    if decision in WITH_OUTPUT and output is None:
        message = f"To {decision}, give the output the step should have."
        raise InvalidInput(message, details={"output": message})
    if intervention.type == InterventionType.INPUT and intervention.form is not None:
        _fits_form(intervention.form, data)
    return {"decision": decision, "data": data, "output": output, "comment": comment}


def _fits_form(form: dict, data) -> None:
    validator = validator_for(form)(form)
    errors = sorted(validator.iter_errors(data), key=lambda error: list(error.absolute_path))
    if errors:
        details = {_field(error): error.message for error in errors}
        first = next(iter(details.items()))
        raise InvalidInput(
            f"The data does not fit the form: {first[0]}: {first[1]}.", details=details
        )


def _field(error) -> str:
    """`data.address.zip`, `data.items[2]`; a missing property named as the field itself."""
    path = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        path += [next(name for name in error.validator_value if name not in error.instance)]
    return "data" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def step_answered(intervention: Intervention, resolution: dict, *, by: str) -> None:
    """Move the waiting step as the answer says (nothing waits on a review); the engine raises
    Conflict when the step no longer waits on the intervention, or its run has ended."""
    ref, step_run_id = intervention.wait_ref, intervention.step_run_id
    if not ref:
        return
    decision = resolution["decision"]
    moved = {"step_run_id": step_run_id, "ref": ref, "by": by}
    reason = f"{decision} by {by or 'the system'}" + (
        f": {resolution['comment']}" if resolution.get("comment") else ""
    )
    if decision == "retry":
        api.step_retry(**moved)
    elif decision == "skip":
        api.step_skip(**moved, reason=reason)
    elif decision == "abort":
        api.step_fail(**moved, message=reason, code="aborted")
    elif decision == "override" or (decision == "edit" and intervention.source == Source.REVIEW):
        api.step_override(**moved, output=resolution["output"])
    elif intervention.source == Source.REVIEW:  # a correction confirmed: the proposed output
        api.step_resume(**moved)
    else:  # a human step: its output is the answer
        api.step_resume(**moved, output=human_output(intervention, resolution, by))


def human_output(intervention: Intervention, resolution: dict, by: str) -> dict:
    data = resolution["data"]
    if intervention.type == InterventionType.CORRECTION:
        edited = resolution["decision"] == "edit"
        data = resolution["output"] if edited else intervention.context.get("proposed")
    return {"decision": resolution["decision"], "data": data,
            "comment": resolution["comment"], "resolved_by": by or None}  # fmt: skip
