"""What a step kind must provide, and the registry the engine looks kinds up in.

The engine never names a kind: `agent` and `human` steps plug in by registering an executor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from workflows.models import Run, StepRun
    from workflows.spec import SpecError, StepSpec


class StepFailed(Exception):
    """The step's work failed; the message is what the run's history records."""


@dataclass(frozen=True)
class StepContext:
    run: Run
    step_run: StepRun
    step: StepSpec
    input: Any
    timeout_s: float


@dataclass(frozen=True)
class Done:
    output: Any = None
    degraded: bool = False


@dataclass(frozen=True)
class Wait:
    """Park the step: until `wake_at` (a timer kept in the database), or until something outside
    the engine (a child run, a person) resumes it. `output` is what the step yields on waking."""

    wake_at: datetime | None = None
    output: Any = None
    details: dict = field(default_factory=dict)


class StepExecutor(Protocol):
    kind: str

    def validate(self, step: StepSpec, path: str) -> list[SpecError]:
        """Check the kind-specific part of a step spec at publish time."""

    def execute(self, context: StepContext) -> Done | Wait:
        """Do the step's work; raise StepFailed (or anything) to fail the attempt."""

    def runs_inline(self, step: StepSpec) -> bool:
        """Whether the step is quick and has no outside effects, so it may run inside the
        engine's transaction instead of under a lease between two transactions."""


_registry: dict[str, StepExecutor] = {}


def register(executor: StepExecutor) -> StepExecutor:
    _registry[executor.kind] = executor
    return executor


def executor_for(kind: str) -> StepExecutor:
    return _registry[kind]


def known_kinds() -> list[str]:
    return sorted(_registry)
