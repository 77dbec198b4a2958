"""A page's answer form, read back into what the resolve service takes ({decision, data, output,
comment}, as the API's body), and what each type of intervention offers to answer with."""

import json

from interventions.dashboard.schema_form import WHOLE, errors_placed, form_fields, json_value
from interventions.dashboard.schema_form import posted_data as form_data
from interventions.decisions import DECISIONS, WITH_OUTPUT
from interventions.models import Intervention, InterventionType

# The buttons of each type: decision -> label (the decisions themselves are decisions.DECISIONS).
LABELS = {"approve": "Approve", "reject": "Reject", "submit": "Submit", "confirm": "Confirm as "
          "proposed", "edit": "Submit the edit", "retry": "Retry the step", "skip": "Skip the step",
          "abort": "Abort the run", "override": "Override with this output"}  # fmt: skip
DANGER = ("reject", "abort")
# What the browser asks before sending a decision that cannot be taken back (static/dashboard/
# confirm.js shows it as a native dialog: Enter or Escape answers it).
CONFIRM = {"abort": "Abort the run? It fails now and none of its remaining steps will run."}


def answer_posted(intervention: Intervention, posted) -> tuple[dict, dict[str, str]]:
    """The resolve service's keyword arguments from the POST, and the errors of what is not
    even JSON (nothing is submitted while there are any)."""
    decision = posted.get("decision") or None
    answer = {"decision": decision, "data": None, "output": None,
              "comment": posted.get("comment", "")}  # fmt: skip
    errors: dict[str, str] = {}
    if intervention.type == InterventionType.INPUT:
        answer["data"], errors = form_data(intervention.form, posted)
    if decision in WITH_OUTPUT:
        answer["output"], error = json_value(posted.get("output", ""))
        if error:
            errors["output"] = error
    elif decision == "confirm" and _edited(intervention, posted.get("output")):
        errors["output"] = EDITED
    return answer, errors


EDITED = ("You edited the proposed output: submit the edit, or undo your changes to confirm it "
          "as proposed.")  # fmt: skip


def _edited(intervention: Intervention, raw: str | None) -> bool:
    """Whether the correction's editor (when the form sent it) holds other than the proposal,
    which confirming would silently drop."""
    if raw is None:
        return False
    value, error = json_value(raw)
    return bool(error) or value != intervention.context.get("proposed")


def answer_form(intervention: Intervention, posted=None, errors=None) -> dict:
    """What the page's form shows: its buttons, the input's fields, the output editor's text,
    each with its error, and the errors no field holds."""
    decisions = [(decision, LABELS[decision], decision in DANGER, CONFIRM.get(decision, ""))
                 for decision in DECISIONS[intervention.type]]  # fmt: skip
    fields = []
    if intervention.type == InterventionType.INPUT:
        fields = form_fields(intervention.form, posted)
    errors = dict(errors or {})
    invalid = bool(errors)
    output_error = str(errors.pop("output", ""))
    comment_error = str(errors.pop("comment", ""))
    loose = errors_placed(fields, {key: message for key, message in errors.items()
                                   if key.startswith(WHOLE)})  # fmt: skip
    loose += [str(message) for key, message in errors.items() if not key.startswith(WHOLE)]
    proposed = _pretty(intervention.context.get("proposed"))
    output = posted.get("output", "") if posted is not None else proposed
    return {"decisions": decisions, "fields": fields, "output": output, "invalid": invalid,
            "proposed": proposed,
            "output_error": output_error, "comment_error": comment_error, "loose_errors": loose,
            "comment": posted.get("comment", "") if posted is not None else "",
            "with_output": intervention.type in (InterventionType.CORRECTION,
                                                 InterventionType.ESCALATION)}  # fmt: skip


def _pretty(value) -> str:
    return "" if value is None else json.dumps(value, indent=2, ensure_ascii=False)
