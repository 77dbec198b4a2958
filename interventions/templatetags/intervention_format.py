"""`{% load intervention_format %}`: an intervention's due time as the countdown the page's
script keeps ticking (static/dashboard/countdown.js reads `data-due`)."""

from django import template
from django.utils.html import format_html

register = template.Library()


@register.filter
def due_badge(intervention) -> str:
    """`<time data-due=…>in 3 h 12 min</time>`, marked bad and worded `Overdue by …` once passed
    (pages.py sets due_text and overdue on the intervention it shows)."""
    if intervention.due_at is None:
        return format_html('<span class="muted">{}</span>', "no due time")
    at = intervention.due_at.isoformat()
    return format_html(
        '<time class="due badge {}" data-testid="due" datetime="{}" data-due="{}" title="{}">{}'
        "</time>",
        "bad" if intervention.overdue else "ok",
        at,
        at,
        intervention.due_at.strftime("%Y-%m-%d %H:%M:%S %Z"),
        intervention.due_text,
    )
