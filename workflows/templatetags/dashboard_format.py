"""How the dashboard writes statuses, money, times and documents (`{% load dashboard_format %}`).
Statuses are always written out; the badge's colour only helps the eye."""

import json

from django import template
from django.utils import timezone
from django.utils.html import format_html

from workflows import formats
from workflows.formats import age_words

register = template.Library()

DOCUMENT_CHARS = 4000  # a page shows the start of a large document, not all of it


status_badge = register.filter("status_badge", formats.status_badge)
register.filter("usd", formats.usd)


@register.filter
def pretty_json(document) -> str:
    text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return text if len(text) <= DOCUMENT_CHARS else text[:DOCUMENT_CHARS] + "\n…"


register.filter("brief_json", formats.brief_json)


@register.filter
def took(obj) -> str:
    """How long a run or step run took (or has taken so far)."""
    return formats.took_words(obj.started_at, obj.finished_at)


@register.filter
def seconds(amount: float) -> str:
    """A number of seconds as a duration: 1 min 15 s."""
    return formats.duration_words(amount)


@register.filter
def since(moment) -> str:
    """How long ago `moment` was, as a duration: 2 h 05 min."""
    return formats.duration_words((timezone.now() - moment).total_seconds())


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


when = register.filter("when", formats.when)
