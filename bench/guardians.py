"""CRITERIA_GATE guardians evaluated in this process, measured in one invocation.

    .venv/bin/python bench/guardians.py [--repeat 5] [--evaluations 50000] [--batch 1000]

(a) `guardians.evaluation.evaluate` of one published CRITERIA_GATE version with three rules
    (two `all:`, one `any:`) on step contexts like the gate's (inputs, state, ctx, steps, run),
    one after the other: evaluations per second, target >= 20,000. Each builds the verdict the
    gate records: outcome, reason, and the evidence of the four values the rules read.
(b) `evaluate_many` of the same version on 1,000 contexts at once: ms per batch.

The contexts vary (three in ten fail a rule), so allow and block verdicts are both built.
The version is prepared (its rules compiled) before timing: that happens once per process.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

# Run as a script, this file's folder heads sys.path, and this module's name would shadow the
# `guardians` app: the project's root takes its place (bench.run puts it first anyway).
ROOT = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0]).resolve() == ROOT / "bench":
    sys.path[0] = str(ROOT)

from bench import run  # noqa: E402  (sets the bench environment up and calls django.setup())

# isort: split
from django.contrib.auth import get_user_model  # noqa: E402

from guardians.evaluation import evaluate, evaluate_many  # noqa: E402
from guardians.models import Guardian, GuardianVersion  # noqa: E402
from guardians.services import guardian_create, guardian_version_publish  # noqa: E402

TARGET_RATE = 20_000
SPEC = {
    "slug": "bench-criteria",
    "kind": "CRITERIA_GATE",
    "config": {
        "all": ["steps.risk.output.data.score < 0.7", "run.cost_usd <= inputs.budget_usd"],
        "any": ["run.age_s < 3600"],
        "else": "block",
    },
}


def version_ensure(user) -> GuardianVersion:
    guardian = Guardian.objects.filter(slug=SPEC["slug"]).first()
    if guardian is None:
        guardian = guardian_create(source=SPEC, by=user)
    else:
        guardian_version_publish(guardian=guardian, source=SPEC, by=user)
    guardian.refresh_from_db()
    return GuardianVersion.objects.select_related("guardian").get(pk=guardian.current_version_id)


def _score(i: int) -> float:
    return (i % 10) / 10 + 0.05  # three in ten are 0.7 or more: the first rule fails


def contexts(count: int) -> list[dict]:
    return [
        {
            "inputs": {"budget_usd": 0.5, "document": "contract text"},
            "state": {},
            "ctx": {"now": "2026-01-01T00:00:00+00:00"},
            "steps": {"risk": {"status": "SUCCEEDED", "output": {"data": {"score": _score(i)}}}},
            "run": {
                "id": f"run-{i}",
                "status": "RUNNING",
                "cost_usd": 0.01 * (i % 7),
                "age_s": float(i % 600),
            },
        }
        for i in range(count)
    ]


def measure_one_by_one(version, samples: list[dict], evaluations: int) -> tuple[float, dict]:
    outcomes: dict[str, int] = {}
    count = len(samples)
    start = time.perf_counter()
    for i in range(evaluations):
        verdict = evaluate(version, samples[i % count])
        outcomes[verdict.outcome] = outcomes.get(verdict.outcome, 0) + 1
    return evaluations / (time.perf_counter() - start), outcomes


def measure_batch(version, samples: list[dict]) -> float:
    start = time.perf_counter()
    verdicts = evaluate_many(version, samples)
    elapsed = time.perf_counter() - start
    assert len(verdicts) == len(samples)
    return elapsed * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds of (a) and of (b)")
    parser.add_argument("--evaluations", type=int, default=50_000, help="(a): a round's count")
    parser.add_argument("--batch", type=int, default=1000, help="(b): contexts in one batch")
    args = parser.parse_args()

    run.database_prepare()
    user = get_user_model().objects.get_or_create(username="bench")[0]
    version = version_ensure(user)
    samples = contexts(args.batch)
    measure_one_by_one(version, samples, 2000)  # warm-up: prepare, compile, caches
    rates, batches, outcomes = [], [], {}
    for _ in range(args.repeat):
        rate, outcomes = measure_one_by_one(version, samples, args.evaluations)
        rates.append(rate)
        batches.append(measure_batch(version, samples))
    rate, batch = statistics.median(rates), statistics.median(batches)
    verdict = "meets" if rate >= TARGET_RATE else "misses"
    print(f"guardians bench: {version}, three rules; median of {args.repeat} rounds")
    print(f"(a) evaluate, one by one: {rate:,.0f} evaluations/s ({verdict} >= {TARGET_RATE:,}); "
          f"outcomes of the last round {outcomes}")  # fmt: skip
    print(f"(b) evaluate_many of {args.batch} contexts: {batch:.1f} ms a batch "
          f"({args.batch / batch * 1000:,.0f} contexts/s)")  # fmt: skip
    print("rounds (a): " + ", ".join(f"{r:,.0f}/s" for r in rates))
    print("rounds (b): " + ", ".join(f"{b:.1f} ms" for b in batches))


if __name__ == "__main__":
    main()
