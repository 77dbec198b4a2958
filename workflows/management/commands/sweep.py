"""Run the engine's periodic sweeps by hand, or in a loop where beat is not running."""

import time

from django.core.management import BaseCommand

from workflows.engine.budget import holds_release_stale
from workflows.engine.registry import sweeps
from workflows.engine.sweeps import steps_dispatch_due, steps_recover_expired, steps_wake_due


class Command(BaseCommand):
    help = (
        "Dispatch due step runs, wake due timers and finished sub-workflows, recover step "
        "runs whose lease expired, then run the plug-ins' sweeps (expire interventions past "
        "their due time); print how many rows each moved."
    )

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="Keep sweeping until stopped.")
        parser.add_argument(
            "--interval", type=float, default=1.0, help="Seconds between sweeps with --loop."
        )
        parser.add_argument(
            "--rounds", type=int, default=0, help="With --loop, stop after N sweeps (0: never)."
        )

    def handle(self, *args, loop: bool, interval: float, rounds: int, **options):
        if not loop:
            self.stdout.write(_sweep_line(_sweep()))
            return
        done = 0
        try:
            while not rounds or done < rounds:
                counts = _sweep()
                if any(counts.values()):
                    self.stdout.write(_sweep_line(counts))
                done += 1
                if not rounds or done < rounds:
                    time.sleep(interval)
        except KeyboardInterrupt:
            pass
        self.stdout.write(f"Stopped after {done} sweep(s).")


def _sweep() -> dict[str, int]:
    return {
        "dispatched": steps_dispatch_due(),
        "woken": steps_wake_due(),
        "recovered": steps_recover_expired(),
        "holds released": holds_release_stale(),
        **{name: sweep() for name, sweep in sweeps().items()},
    }


def _sweep_line(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counts.items())
