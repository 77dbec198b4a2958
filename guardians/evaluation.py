"""Evaluating guardians: a registry of evaluators by kind, each prepared once per published
version in this process (versions are immutable), and `evaluate` / `evaluate_many`, which never
raise: a guardian that fails gives its `on_error` outcome, with the error recorded."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from guardians.specs import config_parse

MAX_EVIDENCE_CHARS = 2000  # of one value read, as JSON; a bigger one is summarised
MISSING = object()


@dataclass(frozen=True)
class Verdict:
    outcome: str  # allow | block | route | escalate
    reason: str = ""
    evidence: dict = field(default_factory=dict)
    route: tuple[str, ...] = ()  # the steps a route names
    error: str = ""  # what the guardian raised, when on_error decided


class Evaluator:
    """A kind's evaluator, prepared from one version's validated config."""

    def __init__(self, config):
        self.config = config

    def decide(self, context: dict, depth: int) -> Verdict:
        raise NotImplementedError

    def paths(self) -> set[tuple]:
        """The data its rules read (api.expression_paths), for the gate's context."""
        return set()

    def routes(self) -> set[str]:
        """The steps it may route to (each must need the guarded step)."""
        return set()

    def heads(self) -> set[str]:
        """The steps it reads as heads of a join (each must run before the guarded step)."""
        return set()


_kinds: dict[str, type[Evaluator]] = {}
_prepared: dict[int, Evaluator] = {}
MAX_PREPARED = 10_000


def evaluator(kind: str) -> Callable[[type[Evaluator]], type[Evaluator]]:
    """Register the evaluator class of `kind`."""

    def register(cls):
        _kinds[kind] = cls
        return cls

    return register


def prepared(version) -> Evaluator:
    """The version's evaluator, built (its expressions compiled) once per process."""
    found = _prepared.get(version.pk) if version.pk else None
    if found is None:
        found = _kinds[version.kind](config_parse(version.kind, version.config))
        if version.pk:
            if len(_prepared) >= MAX_PREPARED:
                _prepared.clear()
            _prepared[version.pk] = found
    return found


def evaluate(version, context: dict, *, depth: int = 0) -> Verdict:
    """What `version` decides on `context` (inputs, state, ctx, steps, run)."""
    try:
        return prepared(version).decide(context, depth)
    except Exception as exc:  # a failing guardian decides by its on_error, never hangs a run
        return failed(version, exc)


def evaluate_many(version, contexts: Iterable[dict]) -> list[Verdict]:
    """evaluate() for each context, preparing the version once."""
    try:
        evaluator_ = prepared(version)
    except Exception as exc:
        return [failed(version, exc) for _ in contexts]
    verdicts = []
    for context in contexts:
        try:
            verdicts.append(evaluator_.decide(context, 0))
        except Exception as exc:
            verdicts.append(failed(version, exc))
    return verdicts


def failed(version, exc: Exception) -> Verdict:
    error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, GuardianError) else str(exc)
    reason = f"failed, so on_error applies ({version.on_error}): {error}"
    return Verdict(version.on_error, reason=reason, error=error)


class GuardianError(Exception):
    """A guardian could not decide (a rule that cannot be read); the message names the rule."""


def read(path: tuple, context: dict) -> Any:
    """The value at `path` in the context, or MISSING; plain data, so a plain walk."""
    value = context
    for key in path:
        in_list = (
            isinstance(value, list) and isinstance(key, int) and -len(value) <= key < len(value)
        )
        if not (in_list or (isinstance(value, dict) and key in value)):
            return MISSING
        value = value[key]
    return value


def path_text(path: tuple) -> str:
    text = str(path[0])
    for key in path[1:]:
        text += f"[{key}]" if isinstance(key, int) else f".{key}"
    return text


def evidence_of(paths: Iterable[tuple], context: dict) -> dict:
    """{path: value} of what the rules read (None: not there), big values summarised."""
    evidence = {}
    for path in paths:
        value = read(path, context)
        evidence[path_text(path)] = _kept(None if value is MISSING else value)
    return evidence


def _kept(value):
    if isinstance(value, dict | list):
        text = json.dumps(value, default=str)
        if len(text) > MAX_EVIDENCE_CHARS:
            return f"<{type(value).__name__} of {len(value)} items, {len(text)} characters>"
    return value
