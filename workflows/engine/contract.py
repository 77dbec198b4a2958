"""What plug-ins and the engine agree on: step outcomes, gate decisions, and the protocols of
step executors and gates. Plug-ins reach these through `workflows.engine.api`."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

if TYPE_CHECKING:
    from workflows.spec import SpecError, StepSpec, WorkflowSpec


# Step outcomes: what an executor returns. `cost_usd` is what the attempt cost (an LLM call's
# tokens, say); it adds to the run's cost whatever the outcome. `events` are (type, payload)
# pairs of types registered with `event_type_register`, written with the outcome; `records` are
# unsaved model instances of the plug-in's own (LLM calls), saved in the same transaction. Cost,
# events and records are kept even when the outcome comes too late to count.


@dataclass(frozen=True)
class Done:
    """The step's work is done; `output` is what later steps read as steps.<id>.output."""

    output: Any = None
    degraded: bool = False
    cost_usd: Decimal | float = 0
    events: tuple[tuple[str, dict], ...] = ()
    records: tuple = ()


@dataclass(frozen=True)
class Wait:
    """Park the step until something resumes it: a person, a child run, or the timer `wake_at`
    (then it succeeds with `output`). `reason` says what it waits for; `ref` names the thing
    (an intervention id, a child run id), and outside callers must quote it to move the step."""

    reason: str
    ref: str = ""
    wake_at: datetime | None = None
    output: Any = None
    cost_usd: Decimal | float = 0
    events: tuple[tuple[str, dict], ...] = ()
    records: tuple = ()


@dataclass(frozen=True)
class Skip:
    """The step decided not to do its work; its dependents go on (a step whose needs were all
    skipped is skipped too). `degraded` marks the run as having run without it."""

    reason: str
    degraded: bool = False
    cost_usd: Decimal | float = 0
    events: tuple[tuple[str, dict], ...] = ()
    records: tuple = ()


class Fail(Exception):
    """The attempt failed: return it, or raise it from anywhere inside `execute`. A retryable
    failure is retried per the step's `retry:` policy; `retryable=False` fails the step at once.
    `code` is a short machine-readable cause (`http_error`, `timeout`, `budget_exceeded`)."""

    def __init__(
        self,
        message: str,
        *,
        code: str = "failed",
        retryable: bool = True,
        cost_usd: Decimal | float = 0,
        events: tuple[tuple[str, dict], ...] = (),
        records: tuple = (),
    ):
        super().__init__(message)
        self.message = message
        self.code = code
        self.retryable = retryable
        self.cost_usd = cost_usd
        self.events = tuple(events)
        self.records = tuple(records)

    def __eq__(self, other):
        return isinstance(other, Fail) and vars(self) == vars(other)

    __hash__ = Exception.__hash__


Outcome = Done | Wait | Skip | Fail


@dataclass(frozen=True)
class StepContext:
    """What an executor is given. `input` is the step's `with`, rendered; `params` its kind's
    own fields, validated (an instance of the executor's `fields` model)."""

    run_id: str
    step_run_id: int
    step: StepSpec
    params: BaseModel
    input: dict
    iteration: int
    attempt: int
    timeout_s: float
    idempotency_key: str  # stable across retries and redeliveries of this iteration
    started_by_id: int | None  # the user who started the run (None: the system)
    ctx: dict = field(default_factory=dict)  # the run's ctx
    claim: uuid.UUID | None = None  # this attempt's claim (engine.budget holds against it)
    budget_usd: Decimal | None = None  # the run's budget (None: none)


class StepExecutor(Protocol):
    """A step kind. A step is of kind K when it has the key K (`tool: noop` is a `tool` step)."""

    kind: str
    # The model of the kind's own step fields, the kind's key among them; validated at publish,
    # each error reported with its path (steps[2].tool).
    fields: type[BaseModel]
    # Optional: dotted paths of its fields that are templates (`human.prompt`): checked at
    # publish like `with`, and the steps they read are in the step's template context.
    template_fields: tuple[str, ...]

    def validate(self, step: StepSpec, params: BaseModel, path: str, publishing) -> list[SpecError]:
        """Check what the model alone cannot (e.g. a tool's `with` keys); `publishing` is a
        spec.Publishing when a version is being published (its author), else None."""

    def runs_inline(self, step: StepSpec, params: BaseModel) -> bool:
        """Whether the step is quick and has no outside effects, so it may run inside the
        engine's transaction instead of under a lease, in the pool of calls in flight."""

    def execute(self, context: StepContext) -> Outcome:
        """Do the step's work. Anything raised other than Fail fails the attempt, retryably."""


# Gate decisions: what a gate answers before a step runs. None means "nothing to say".


@dataclass(frozen=True)
class Allow:
    reason: str = ""
    details: dict = field(default_factory=dict)
    records: tuple = ()


@dataclass(frozen=True)
class Block:
    """The step fails with `reason`, without running."""

    reason: str
    details: dict = field(default_factory=dict)
    records: tuple = ()


@dataclass(frozen=True)
class Route:
    """The step runs; of the steps that need it, only those in `to` run (the others are SKIPPED)."""

    to: tuple[str, ...]
    reason: str = ""
    details: dict = field(default_factory=dict)
    records: tuple = ()


@dataclass(frozen=True)
class Escalate:
    """The step waits, with `ref`, until resolved from outside (api.step_retry runs it,
    step_skip skips it, step_fail fails it, step_override gives it an output)."""

    reason: str
    ref: str = ""
    details: dict = field(default_factory=dict)
    records: tuple = ()


Decision = Allow | Block | Route | Escalate
# A decision's `records` (the plug-in's own rows: a guardian's decision) are saved with it.


@dataclass(frozen=True)
class Waiting:
    """A step run that has just started to wait, as handlers registered with
    `step_waiting_register` see it, inside the transaction that parks it. `reason` is the Wait's
    ("escalated" for a gate's Escalate and for a failure under `on_failure: escalate`), `ref` what
    outside callers must quote; `message` says why (the gate's reason, the failure)."""

    run_id: str
    step_run_id: int
    step: StepSpec
    iteration: int
    attempt: int
    reason: str
    ref: str
    message: str
    details: dict
    output: Any
    input: Any  # the step's `with`, rendered (None: a gate held it before it ran)
    started_by_id: int | None
    context: Callable[[], dict]  # the step's template context (inputs, state, steps), on call
    # event(type, payload): a run event of a type the plug-in registered, written with the park
    event: Callable[[str, dict], None]


@dataclass(frozen=True)
class Review:
    """A step run about to succeed with `output`, as reviewers registered with `review_register`
    see it: a reviewer may hold it (answer a Wait whose `output` is the proposed output) until
    someone resumes or overrides it, or let it pass (None)."""

    run_id: str
    step_run_id: int
    step: StepSpec
    iteration: int
    output: Any
    started_by_id: int | None
    context: Callable[[], dict]  # the step's template context, on call
    # event(type, payload): a run event of a type the plug-in registered, written with the success
    event: Callable[[str, dict], None]


class GateCheck:
    """What a gate is asked about: the step about to start, and what its templates could read
    (`context`: inputs, state, ctx, steps, and run: {id, status, cost_usd, age_s}), built when
    first read (a gate with nothing to check on the step never pays for it)."""

    def __init__(self, *, run_id: str, workflow: str, spec: WorkflowSpec, step: StepSpec, context):
        self.run_id, self.workflow, self.spec, self.step = run_id, workflow, spec, step
        self._context = context

    @cached_property
    def context(self) -> dict:
        return self._context()

    def context_reading(self, steps) -> dict:
        """The context with the outputs of `steps` too (ids of steps a gate's own expressions
        read, beyond those the step's templates read); built anew on each call."""
        steps = frozenset(steps)
        return self._context(steps) if steps else self.context


class Gate(Protocol):
    name: str

    def evaluate(self, check: GateCheck) -> Decision | None:
        """Decide about the step. Called inside the engine's transaction, under the run's lock:
        rows the gate writes (its own records) commit or roll back with the decision."""
