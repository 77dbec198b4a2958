"""The overview's figures, all of runs of workflows the user may view: runs by status, the queue
by priority, SLA breaches, cost today and by workflow, and the pilots' leaderboard. Each is one
aggregate query (the leaderboard reads the window's resolutions, four small columns each), so
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

from django.db.models import Count, Sum
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
    queue = dict(active.values_list("priority").annotate(n=Count("pk")).order_by())
    overdue = active.filter(due_at__lt=now)
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
        queue_by_priority=[(p.label, queue.get(p.value, 0)) for p in reversed(Priority)],
        breached_open=overdue.count(),
        breaches_listed=list(overdue.order_by("due_at", "pk")[:BREACHES_LISTED]),
        resolved_late=sum(1 for _, opened, resolved, due in resolutions if due and resolved > due),
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
    """(resolver's username or None, opened, resolved, due) of the window's resolutions."""
    resolved = interventions.filter(status=Status.RESOLVED, resolved_at__gte=since)
    rows = resolved.values_list("resolved_by__username", "created_at", "resolved_at", "due_at")
    return list(rows)


def _leaderboard(resolutions) -> list[PilotRow]:
    by_pilot: dict[str, list[tuple]] = {}
    for username, opened, resolved, due in resolutions:
        if username is not None:
            by_pilot.setdefault(username, []).append((opened, resolved, due))
    board = [_pilot_row(username, done) for username, done in by_pilot.items()]
    board.sort(key=lambda row: (-row.resolved, row.median_s, row.username))
    return board[:LEADERBOARD_ROWS]


def _pilot_row(username: str, done: list[tuple]) -> PilotRow:
    """`done`: (opened, resolved, due) of each intervention the pilot resolved."""
    due_ones = [(resolved, due) for _, resolved, due in done if due is not None]
    return PilotRow(
        username=username,
        resolved=len(done),
        median_s=statistics.median(
            (resolved - opened).total_seconds() for opened, resolved, _ in done
        ),
        on_time=sum(1 for resolved, due in due_ones if resolved <= due),
        with_due=len(due_ones),
    )
