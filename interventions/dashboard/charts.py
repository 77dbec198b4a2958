"""Bar charts drawn on the server as SVG: each bar with its label and its number written beside
it, so the chart reads without colour and without JavaScript."""

from dataclasses import dataclass

from django.utils.html import format_html
from django.utils.safestring import mark_safe

WIDTH, LABEL_W, VALUE_W, ROW_H, BAR_H = 440, 130, 80, 26, 16
LABEL_CHARS = 18  # a longer label is cut short beside its bar, and written whole on hover


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str  # the number as the page writes it ("3", "$0.42")
    tone: str = ""  # ok | warn | bad | info: a CSS class, beside the text


def bar_chart(bars: list[Bar], *, title: str, testid: str):
    """A horizontal bar chart, bars scaled to the largest value (all zero: no bar drawn)."""
    biggest = max((bar.value for bar in bars), default=0) or 1
    scale = (WIDTH - LABEL_W - VALUE_W) / biggest
    height = max(len(bars), 1) * ROW_H
    rows = mark_safe("".join(_row(index, bar, scale) for index, bar in enumerate(bars)))  # noqa: S308 - rows of format_html
    return format_html(
        '<svg class="chart" role="img" aria-label="{}" data-testid="{}" viewBox="0 0 {} {}" '
        'width="{}" height="{}"><title>{}</title>{}</svg>',
        title, testid, WIDTH, height, WIDTH, height, title, rows,
    )  # fmt: skip


def _row(index: int, bar: Bar, scale: float) -> str:
    length = bar.value * scale
    label = bar.label if len(bar.label) <= LABEL_CHARS else bar.label[: LABEL_CHARS - 1] + "…"
    return format_html(
        '<g class="bar {}" transform="translate(0,{})" data-label="{}" data-value="{}">'
        "<title>{}: {}</title>"
        '<text x="{}" y="{}" text-anchor="end" class="bar-label">{}</text>'
        '<rect x="{}" y="2" width="{}" height="{}" rx="3"></rect>'
        '<text x="{}" y="{}" class="bar-value">{}</text></g>',
        bar.tone, index * ROW_H, bar.label, bar.text,
        bar.label, bar.text,
        LABEL_W - 8, BAR_H - 1, label,
        LABEL_W, f"{length:.1f}", BAR_H,
        f"{LABEL_W + length + 6:.1f}", BAR_H - 1, bar.text,
    )  # fmt: skip
