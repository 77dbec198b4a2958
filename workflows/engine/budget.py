"""A run's budget, held by the calls in flight: reserve a call's worst case before making it,
settle to what it cost after.

A run may spend `budget_usd`. What its step runs hold (`reserved_usd`, on the run and on each
step run) counts as spent until their attempt is recorded: then the cost is added to the run and
the step run's hold is released, in one transaction (engine.transitions). So the run's cost plus
what is held never passes the budget, however many steps reserve at once: each reservation is
one conditional UPDATE of the run's row. A hold is released when its attempt ends (cancelled,
taken over after a dead worker's lease, recorded), except that a call timed out while still in
flight keeps its hold until its own late outcome is recorded (engine.runner), so no retry can
spend that money meanwhile.
"""

from decimal import Decimal

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from workflows.engine.contract import StepContext
from workflows.engine.progress import lease_for
from workflows.models import Run, StepRun, StepStatus
from workflows.spec import spec_for_version_id


def budget_reserve(context: StepContext, amount: Decimal) -> bool:
    """Hold `amount` of the run's budget for this attempt; False (nothing held) when the run has
    less than that left. Always True for a run without a budget."""
    if context.budget_usd is None:
        return True
    amount = Decimal(amount)
    with transaction.atomic():
        # The step run's row first, then the run's: the engine's lock order.
        held = _attempt(context).update(reserved_usd=F("reserved_usd") + amount)
        fits = Q(budget_usd__isnull=True) | Q(
            budget_usd__gte=F("cost_usd") + F("reserved_usd") + amount
        )
        if not held or not Run.objects.filter(fits, pk=context.run_id).update(
            reserved_usd=F("reserved_usd") + amount
        ):
            transaction.set_rollback(True)
            return False
    return True


def budget_settle(context: StepContext, reserved: Decimal, spent: Decimal) -> None:
    """Shrink a reservation of `reserved` to what the call `spent` (held until the attempt's
    outcome is recorded with its cost, even a late one). Nothing once the hold is gone."""
    if context.budget_usd is None:
        return
    freed = Decimal(reserved) - Decimal(spent)
    with transaction.atomic():
        held = StepRun.objects.filter(
            pk=context.step_run_id, claim=context.claim, reserved_usd__gte=freed
        )
        if held.update(reserved_usd=F("reserved_usd") - freed):
            Run.objects.filter(pk=context.run_id).update(reserved_usd=F("reserved_usd") - freed)


def budget_left(context: StepContext) -> Decimal | None:
    """What the run may still spend (its budget less its cost and holds); None: no budget."""
    if context.budget_usd is None:
        return None
    run = Run.objects.values("budget_usd", "cost_usd", "reserved_usd").get(pk=context.run_id)
    return run["budget_usd"] - run["cost_usd"] - run["reserved_usd"]


def holds_release_stale(now=None) -> int:
    """Give back the holds of calls timed out in flight whose late outcome never came (their
    worker died): once the step's lease has passed again since the timeout. Run by the beat
    sweep that recovers expired leases; returns how many it released."""
    now = now or timezone.now()
    kept = (
        StepRun.objects.filter(reserved_usd__gt=0, finished_at__isnull=False)
        .exclude(status=StepStatus.RUNNING)
        .values_list("pk", "run_id", "step_id", "finished_at", "run__version_id")[:500]
    )
    released = 0
    for pk, run_id, step_id, finished_at, version_id in kept:
        timeout_s = spec_for_version_id(version_id).step(step_id).timeout_s
        if finished_at + lease_for(timeout_s) > now:
            continue
        with transaction.atomic():  # the step run, then its run: the engine's lock order
            step_run = StepRun.objects.select_for_update().filter(pk=pk).first()
            if step_run is None or not step_run.reserved_usd:
                continue
            Run.objects.filter(pk=run_id).update(
                reserved_usd=F("reserved_usd") - step_run.reserved_usd
            )
            StepRun.objects.filter(pk=pk).update(reserved_usd=0)
            released += 1
    return released


def _attempt(context: StepContext):
    """The attempt, while it may still spend: running under its claim."""
    return StepRun.objects.filter(
        pk=context.step_run_id, status=StepStatus.RUNNING, claim=context.claim
    )
