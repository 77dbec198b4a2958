"""How money, documents and ages read, the same on the dashboard and in the admin."""

import json
from decimal import Decimal

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
