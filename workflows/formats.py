"""How statuses, money, documents, moments, ages and durations read, the same on the dashboard
and in the admin (each wraps these in its own look where it must)."""

import json
from datetime import datetime
from decimal import Decimal

from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

BRIEF_CHARS = 140  # a table cell's summary of a document


def usd(amount) -> str:
    """Exact dollars, without the trailing zeros of six decimal places: $0.00015, $1.20."""
    amount = Decimal(amount or 0)
    text = f"{amount:.6f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return f"${whole}.{cents.ljust(2, '0')}"


def brief_json(document, chars: int = BRIEF_CHARS) -> str:
    """A document on one line, cut short: a table cell's summary of an output or a payload."""
    if document in (None, "", {}, []):
        return ""
    text = json.dumps(document, separators=(", ", ": "), ensure_ascii=False, default=str)
    return text if len(text) <= chars else text[: chars - 1] + "…"


AGE_UNITS = ((86400, "day"), (3600, "hour"), (60, "minute"))  # static/dashboard/countdown.js's


def age_words(moment, now) -> str:
    """How long ago `moment` was, in its largest whole unit: just now (under a minute), 1 minute
    ago, 3 hours ago, 12 days ago; the dashboard's countdown.js words it the same."""
    elapsed = (now - moment).total_seconds()
    for size, unit in AGE_UNITS:
        if elapsed >= size:
            count = int(elapsed // size)
            return f"{count} {unit}{'' if count == 1 else 's'} ago"
    return "just now"


# A status's tone (app.css's badge classes); the status is always written out, the tone's colour
# only helps the eye.
STATUS_TONES = {
    "PENDING": "", "PLANNING": "", "RUNNING": "info", "WAITING": "warn", "COMPLETED": "ok",
    "SUCCEEDED": "ok", "SKIPPED": "", "CANCELLED": "", "FAILED": "bad",
    "OPEN": "warn", "CLAIMED": "info", "RESOLVED": "ok", "EXPIRED": "bad",
}  # fmt: skip


def status_badge(status: str, *, classes: str = "badge", style: str = "") -> SafeString:
    """`<span class="badge ok" data-status="COMPLETED">Completed</span>`: `classes` then the
    status's tone, and `style` when given (the admin has no dashboard stylesheet)."""
    tone = STATUS_TONES.get(status, "")
    return format_html(
        '<span class="{}" data-status="{}"{}>{}</span>',
        " ".join(filter(None, [classes, tone])),
        status,
        format_html(' style="{}"', style) if style else "",
        status.capitalize(),
    )


def when(at: datetime | None) -> SafeString | str:
    """The one way to write a moment: 2026-12-01 13:42:06, in the server's time zone (named on
    hover)."""
    if at is None:
        return "—"
    local = timezone.localtime(at)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        at.isoformat(),
        f"{local:%Y-%m-%d %H:%M:%S %Z}",
        f"{local:%Y-%m-%d %H:%M:%S}",
    )


def duration_words(seconds: float) -> str:
    """A duration in its two largest units: 1.23 s, 42 s, 1 min 15 s, 3 h 04 min, 3 d 2 h
    (static/dashboard/countdown.js words the due times' countdown the same)."""
    seconds = max(seconds, 0)
    if seconds < 10:
        return f"{seconds:.2f}".rstrip("0").rstrip(".") + " s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    return f"{hours // 24} d {hours % 24} h"


def took_words(started: datetime | None, finished: datetime | None) -> str:
    """How long a run or a step took: 1 min 15 s, `… so far` while it runs, or not started."""
    if started is None:
        return "not started"
    if finished is None:
        return f"{duration_words((timezone.now() - started).total_seconds())} so far"
    return duration_words((finished - started).total_seconds())
