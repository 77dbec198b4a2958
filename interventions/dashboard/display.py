"""How the dashboard words an intervention's priority and due time (the page's script keeps the
countdown ticking from the same data attribute)."""

from datetime import datetime

from interventions.models import Priority
from workflows.formats import duration_words

PRIORITY_BADGE = {Priority.URGENT: "bad", Priority.HIGH: "warn", Priority.NORMAL: "info",
                  Priority.LOW: ""}  # fmt: skip


def due_text(due_at: datetime | None, now: datetime) -> tuple[str, bool]:
    """The countdown's words and whether it is overdue: `in 3 h 12 min`, `Overdue by 5 min 09 s`."""
    if due_at is None:
        return "no due time", False
    left = (due_at - now).total_seconds()
    if left < 0:
        return f"Overdue by {duration_words(-left)}", True
    return f"in {duration_words(left)}", False
