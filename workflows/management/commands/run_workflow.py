"""Start a run from the command line and, with --wait, follow it to the end."""

import json
import time
from argparse import BooleanOptionalAction

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import BaseCommand, CommandError

from config.errors import ChameleonError, error_lines
from workflows.engine.api import run_start
from workflows.engine.sweeps import steps_execute_due, steps_wake_due
from workflows.models import (
    RUN_TERMINAL,
    Run,
    RunEvent,
    RunStatus,
    StepStatus,
    Workflow,
)

POLL_S = 0.2
EXIT_FAILED, EXIT_TIMEOUT = 1, 2


class Command(BaseCommand):
    help = (
        "Start a run of the workflow SLUG. With --wait, print each step as it finishes, then the "
        "run's status and result; exit 1 if the run failed or was cancelled, 2 on --timeout."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument(
            "--input",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="An input; VALUE is read as JSON when it parses (3, true, [1]), else as text. "
            "Repeatable; applied over --input-json.",
        )
        parser.add_argument("--input-json", metavar="JSON", help="All inputs as a JSON object.")
        parser.add_argument("--idempotency-key", help="Starting twice with a key gives one run.")
        parser.add_argument(
            "--user", help="Username starting the run (default: the workflow's owner)."
        )
        parser.add_argument("--wait", action="store_true", help="Follow the run to its end.")
        parser.add_argument(
            "--timeout", type=float, default=600.0, help="Seconds --wait waits (default 600)."
        )
        parser.add_argument(
            "--inline",
            action=BooleanOptionalAction,
            default=None,
            help="With --wait, execute due steps in this process instead of leaving them to "
            "workers (default: only when the broker is in-memory, where no worker sees them).",
        )

    def handle(self, *args, slug: str, wait: bool, timeout: float, inline, **options):
        inputs = _inputs(options["input_json"], options["input"])
        workflow = Workflow.objects.select_related("owner", "current_version").filter(slug=slug)
        workflow = workflow.first()
        if workflow is None or workflow.current_version is None:
            raise CommandError(f"No workflow '{slug}'.")
        user = _user(options["user"]) if options["user"] else workflow.owner
        try:
            run, created = run_start(
                workflow=workflow,
                inputs=inputs,
                started_by=user,
                idempotency_key=options["idempotency_key"],
            )
        except ChameleonError as exc:
            raise CommandError("\n".join(error_lines(exc))) from None
        verb = "Started" if created else "Found existing"
        self.stdout.write(f"{verb} run {run.pk} of {slug} v{run.version.number}")
        if wait:
            if inline is None:
                inline = settings.CELERY_BROKER_URL.startswith("memory://")
            self._follow(run, timeout, inline=inline)

    def _follow(self, run: Run, timeout: float, *, inline: bool) -> None:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            worked = _act_as_worker() if inline else 0
            # Status first: a terminal status commits with its events, so none are missed.
            status = Run.objects.filter(pk=run.pk).values_list("status", flat=True).get()
            for event in RunEvent.objects.filter(run_id=run.pk, seq__gt=seen).order_by("seq"):
                seen = event.seq
                line = _event_line(event)
                if line:
                    self.stdout.write(line)
            if status in RUN_TERMINAL:
                break
            if time.monotonic() > deadline:
                raise CommandError(
                    f"Run {run.pk} is still {status} after {timeout:g}s.", returncode=EXIT_TIMEOUT
                )
            if not worked:
                time.sleep(POLL_S)
        run.refresh_from_db()
        self.stdout.write(f"Run {run.pk} {run.status}")
        if run.result is not None:
            self.stdout.write(json.dumps(run.result, indent=2, sort_keys=True, default=str))
        if run.status != RunStatus.COMPLETED:
            reason = run.error.splitlines()[0] if run.error else run.status
            raise CommandError(f"Run {run.pk} {run.status}: {reason}", returncode=EXIT_FAILED)


def _act_as_worker() -> int:
    return steps_execute_due(worker="run_workflow") + steps_wake_due()


def _inputs(input_json: str | None, pairs: list[str]) -> dict:
    inputs = {}
    if input_json:
        try:
            inputs = json.loads(input_json)
        except ValueError as exc:
            raise CommandError(f"--input-json is not valid JSON: {exc}") from None
        if not isinstance(inputs, dict):
            raise CommandError("--input-json must be a JSON object.")
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"--input {pair!r}: expected KEY=VALUE.")
        try:
            inputs[key] = json.loads(text)
        except ValueError:
            inputs[key] = text
    return inputs


def _user(username: str):
    user = get_user_model().objects.filter(username=username).first()
    if user is None:
        raise CommandError(f"No user '{username}'.")
    return user


def _event_line(event: RunEvent) -> str:
    if event.type != "step.completed":
        return ""
    payload = event.payload
    line = f"  step {payload.get('step')} {payload.get('status')}"
    if payload.get("status") == StepStatus.FAILED and payload.get("error"):
        line += f": {payload['error'].splitlines()[0]}"
    elif payload.get("status") == StepStatus.SKIPPED and payload.get("reason"):
        line += f" ({payload['reason']})"
    return line
