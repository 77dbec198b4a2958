"""The spec fields that open interventions: a `human:` step, a step's `review:`, and a step's
`escalation:` (who decides when it escalates), validated at publish with their paths; and a
step's `notify:`, where the notifications of every intervention the step opens also go."""

import re
from datetime import timedelta
from typing import Literal

import httpx
from jsonschema import SchemaError
from jsonschema.validators import validator_for
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

DURATION = re.compile(r"^(\d{1,6})([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
Priority = Literal["low", "normal", "high", "urgent"]
OnExpiry = Literal["approve", "reject", "skip", "abort"]
# What may happen to each type when its due time passes unanswered (an approval or a review is
# approved or rejected, a correction approved keeps the proposed output; any waiting step may be
# skipped or aborted).
EXPIRES = {
    "approval": ("approve", "reject", "skip", "abort"),
    "review": ("approve", "reject", "skip", "abort"),
    "correction": ("approve", "skip", "abort"),
    "input": ("skip", "abort"),
    "escalation": ("skip", "abort"),
}


def duration(text: str) -> timedelta:
    """`30s`, `15m`, `4h`, `2d` as a timedelta (ValueError otherwise)."""
    match = DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"expected a duration like 30s, 15m, 4h or 2d, got '{text}'")
    return timedelta(seconds=int(match.group(1)) * _UNIT_S[match.group(2)])


class Task(BaseModel):
    """Who is asked, how urgently, until when: what every intervention's spec says."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str = Field(default="", max_length=10_000)
    group: str | None = Field(default=None, max_length=150)
    assignee: str | None = Field(default=None, max_length=150)
    priority: Priority = "normal"
    due_in: str | None = None
    on_expiry: OnExpiry | None = None

    @field_validator("due_in")
    @classmethod
    def _duration(cls, value):
        if value is not None:
            duration(value)
        return value

    def expiry_error(self, type_: str) -> str | None:
        """Why `on_expiry` does not fit an intervention of `type_` (None: it does)."""
        if self.on_expiry is None or self.on_expiry in EXPIRES[type_]:
            return None
        return f"a {type_} expires with {' or '.join(EXPIRES[type_])}, not {self.on_expiry}"

    def _expires_as(self, type_: str):
        error = self.expiry_error(type_)
        if error:
            raise ValueError(f"on_expiry: {error}")
        return self


class HumanTask(Task):
    type: Literal["approval", "input", "correction", "escalation", "review"] = "approval"
    form: dict | None = None  # JSON Schema of an input's data
    approvals: int = Field(default=1, ge=1, le=50)

    @field_validator("form")
    @classmethod
    def _schema(cls, value):
        if value is not None:
            try:
                validator_for(value).check_schema(value)
            except SchemaError as exc:
                raise ValueError(f"not a JSON Schema: {exc.message}") from None
        return value


class HumanFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    human: HumanTask  # the kind's key


class ReviewTask(Task):
    """`review:` on a step: a correction holds its success until confirmed or edited; a review
    is recorded without holding it."""

    type: Literal["correction", "review"] = "correction"

    @model_validator(mode="after")
    def _expires(self):
        return self._expires_as(self.type)


class EscalationTask(Task):
    """`escalation:` on a step: who decides when a gate escalates it or it fails under
    `on_failure: escalate` (without it: operators and admins)."""

    priority: Priority = "high"

    @model_validator(mode="after")
    def _expires(self):
        return self._expires_as("escalation")


class NotifySpec(BaseModel):
    """`notify:` on a step: notifications of the interventions it opens go to `webhook` too (a
    POST), and by email unless `email: false`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook: str | None = Field(default=None, max_length=2000)
    email: bool = True

    @field_validator("webhook")
    @classmethod
    def _url(cls, value):
        if value is not None:
            try:
                url = httpx.URL(value)
            except httpx.InvalidURL as exc:
                raise ValueError(f"not a URL: {exc}") from None
            if url.scheme not in ("http", "https") or not url.host:
                raise ValueError("expected an http:// or https:// URL with a host")
        return value
