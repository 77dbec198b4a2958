"""The overview's figures, all of runs of workflows the user may view: runs by status, the queue
by priority, SLA breaches, cost today and by workflow, and the pilots' leaderboard. Each is one
aggregate query (the leaderboard reads the window's resolutions, four small values each), so
the page costs the same number of queries whatever the data's size.

- "Today" starts at midnight in TIME_ZONE; cost today is what the runs created since then have
  cost so far (a run's cost is the sum of its calls).
- An SLA breach: an open (or claimed) intervention past its due time, or one resolved after it.
  The leaderboard and the late resolutions cover the last LEADERBOARD_DAYS days; an
  intervention without a due time counts towards a pilot's resolved and median, not the rate.
"""

import statistics
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.db.models import BooleanField, Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.utils import timezone

from interventions.models import ACTIVE, Intervention, Priority, Status
from interventions.selectors import interventions_visible_to
from workflows.engine import api

LEADERBOARD_DAYS = 30
LEADERBOARD_ROWS = 20
BREACHES_LISTED = 10


@dataclass(frozen=True)
class PilotRow:
    username: str
    resolved: int
    median_s: float  # time from opening to resolution
    on_time: int  # resolved by their due time, of
    with_due: int  # those that had one

    @property
    def sla_hit_rate(self) -> float | None:
        return self.on_time / self.with_due if self.with_due else None


@dataclass(frozen=True)
class Overview:
    runs_by_status: list[tuple[str, int]]
    queue_by_priority: list[tuple[str, int]]  # urgent first; open and claimed
    breached_open: int
    breaches_listed: list[Intervention]  # the most overdue open ones
    resolved_late: int
    resolved_in_window: int
    cost_today: Decimal
    cost_by_workflow: list[tuple[str, Decimal]]  # today, the costliest first
    leaderboard: list[PilotRow]


def overview_for(*, user, now=None) -> Overview:
    now = now or timezone.now()
    runs = api.runs_visible(user)
    interventions = interventions_visible_to(user)
    active = interventions.filter(status__in=ACTIVE)
    by_priority = active.values_list("priority").annotate(
        n=Count("pk"), overdue=Count("pk", filter=Q(due_at__lt=now))
    )
    queue = {priority: (n, overdue) for priority, n, overdue in by_priority.order_by()}
    most_overdue = active.filter(due_at__lt=now).order_by("due_at", "pk")[:BREACHES_LISTED]
    resolutions = _resolutions(interventions, since=now - timedelta(days=LEADERBOARD_DAYS))
    today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
    by_workflow = (
        runs.filter(created_at__gte=today)
        .values_list("workflow__slug")
        .annotate(cost=Sum("cost_usd"))
        .order_by("-cost", "workflow__slug")
    )
    cost_by_workflow = [(slug, cost or Decimal(0)) for slug, cost in by_workflow]
    return Overview(
        runs_by_status=_runs_by_status(runs),
        queue_by_priority=[(p.label, queue.get(p.value, (0, 0))[0]) for p in reversed(Priority)],
        breached_open=sum(overdue for _, overdue in queue.values()),
        breaches_listed=list(most_overdue),
        resolved_late=sum(1 for _, _, has_due, on_time in resolutions if has_due and not on_time),
        resolved_in_window=len(resolutions),
        cost_today=sum((cost for _, cost in cost_by_workflow), Decimal(0)),
        cost_by_workflow=cost_by_workflow,
        leaderboard=_leaderboard(resolutions),
    )


def _runs_by_status(runs) -> list[tuple[str, int]]:
    counts = dict(runs.values_list("status").annotate(n=Count("pk")).order_by())
    order = ["PENDING", "PLANNING", "RUNNING", "WAITING", "COMPLETED", "FAILED", "CANCELLED"]
    return [(status, counts.get(status, 0)) for status in order]


def _resolutions(interventions, *, since) -> list[tuple]:
    """(resolver's username or None, seconds to resolve, had a due time, resolved by it) of
    the window's resolutions: computed by the database, which is much faster at it than
    loading three timestamps a row."""
    resolved = interventions.filter(status=Status.RESOLVED, resolved_at__gte=since)
    rows = resolved.annotate(
        took=ExpressionWrapper(F("resolved_at") - F("created_at"), output_field=DurationField()),
        has_due=ExpressionWrapper(Q(due_at__isnull=False), output_field=BooleanField()),
        on_time=ExpressionWrapper(Q(resolved_at__lte=F("due_at")), output_field=BooleanField()),
    ).values_list("resolved_by__username", "took", "has_due", "on_time")
    return [(username, took.total_seconds(), due, on_time) for username, took, due, on_time in rows]


def _leaderboard(resolutions) -> list[PilotRow]:
    by_pilot: dict[str, list[tuple]] = {}
    for username, took, has_due, on_time in resolutions:
        if username is not None:
            by_pilot.setdefault(username, []).append((took, has_due, on_time))
    board = [_pilot_row(username, done) for username, done in by_pilot.items()]
    board.sort(key=lambda row: (-row.resolved, row.median_s, row.username))
    return board[:LEADERBOARD_ROWS]


def _pilot_row(username: str, done: list[tuple]) -> PilotRow:
    """`done`: (seconds to resolve, had a due time, resolved by it) of each it resolved."""
    return PilotRow(
        username=username,
        resolved=len(done),
        median_s=statistics.median(took for took, _, _ in done),
        on_time=sum(1 for _, has_due, on_time in done if has_due and on_time),
        with_due=sum(1 for _, has_due, _ in done if has_due),
    )
