"""How the dashboard words an intervention's priority and due time (the page's script keeps the
countdown ticking from the same data attribute)."""

from datetime import datetime

from interventions.models import Priority

PRIORITY_BADGE = {Priority.URGENT: "bad", Priority.HIGH: "warn", Priority.NORMAL: "info",
                  Priority.LOW: ""}  # fmt: skip


def duration_text(seconds: float) -> str:
    """`2d 4h`, `3h 12m`, `5m 9s`, `42s`: the two largest units."""
    seconds = int(seconds)
    parts = [(seconds // 86400, "d"), (seconds % 86400 // 3600, "h"),
             (seconds % 3600 // 60, "m"), (seconds % 60, "s")]  # fmt: skip
    while len(parts) > 1 and parts[0][0] == 0:
        parts.pop(0)
    return " ".join(f"{value}{unit}" for value, unit in parts[:2])


def due_text(due_at: datetime | None, now: datetime) -> tuple[str, bool]:
    """The countdown's words and whether it is overdue: `in 3h 12m`, `Overdue by 5m 9s`."""
    if due_at is None:
        return "no due time", False
    left = (due_at - now).total_seconds()
    if left < 0:
        return f"Overdue by {duration_text(-left)}", True
    return f"in {duration_text(left)}", False
