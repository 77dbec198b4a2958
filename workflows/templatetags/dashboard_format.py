"""How the dashboard writes statuses, money, times and documents (`{% load dashboard_format %}`).
Statuses are always written out; the badge's colour only helps the eye."""

import json
from datetime import timedelta

from django import template
from django.utils import timezone
from django.utils.html import format_html

from workflows import formats
from workflows.admin_runs import duration, duration_text
from workflows.formats import age_words

register = template.Library()

BADGES = {
    "PENDING": "", "PLANNING": "", "RUNNING": "info", "WAITING": "warn", "COMPLETED": "ok",
    "SUCCEEDED": "ok", "SKIPPED": "", "CANCELLED": "", "FAILED": "bad",
    "OPEN": "warn", "CLAIMED": "info", "RESOLVED": "ok", "EXPIRED": "bad",
}  # fmt: skip
DOCUMENT_CHARS = 4000  # a page shows the start of a large document, not all of it


@register.filter
def status_badge(status: str):
    classes = " ".join(filter(None, ["badge", BADGES.get(status)]))
    return format_html(
        '<span class="{}" data-status="{}">{}</span>', classes, status, status.capitalize()
    )


register.filter("usd", formats.usd)


@register.filter
def pretty_json(document) -> str:
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= DOCUMENT_CHARS else text[:DOCUMENT_CHARS] + "\n…"


register.filter("brief_json", formats.brief_json)


@register.filter
def took(obj) -> str:
    """How long a run or step run took (or has taken so far)."""
    return duration(obj.started_at, obj.finished_at)


@register.filter
def seconds(amount: float) -> str:
    """A number of seconds as a duration: 1 min 15 s."""
    return duration_text(timedelta(seconds=amount))


@register.filter
def percent(share: float) -> str:
    return f"{share * 100:.0f}%"


@register.filter
def age(moment):
    """`<time data-age>3 minutes ago</time>` (the moment on hover), which countdown.js keeps
    true for as long as the page stays open."""
    if moment is None:
        return "—"
    return format_html(
        '<time datetime="{}" title="{}" data-age>{}</time>',
        moment.isoformat(),
        f"{timezone.localtime(moment):%Y-%m-%d %H:%M:%S %Z}",
        age_words(moment, timezone.now()),
    )


@register.filter
def when(at):
    """The dashboard's one way to write a moment: 2026-12-01 13:42:06, in the server's time zone
    (named on hover)."""
    if at is None:
        return "—"
    local = timezone.localtime(at)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        at.isoformat(),
        f"{local:%Y-%m-%d %H:%M:%S %Z}",
        f"{local:%Y-%m-%d %H:%M:%S}",
    )
