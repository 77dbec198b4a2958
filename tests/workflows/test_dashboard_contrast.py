"""The dashboard's status colours (static/dashboard/app.css) read at WCAG AA, 4.5:1, as the
12 px text of a badge on its own background, and on the white card and the grey paper."""

import re

import pytest

from tests.conftest import ROOT

SHEET = ROOT / "static" / "dashboard" / "app.css"
STATUSES = ("ok", "warn", "bad", "info", "idle")


def colours() -> dict[str, str]:
    found = re.findall(r"--([a-z-]+):\s*#([0-9a-f]{6}|[0-9a-f]{3})\b", SHEET.read_text())
    return {name: "#" + (hex if len(hex) == 6 else "".join(c * 2 for c in hex))
            for name, hex in found}  # fmt: skip


def luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(first: str, second: str) -> float:
    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_contrast_is_the_wcag_ratio():
    assert round(contrast("#000000", "#ffffff"), 2) == 21.0
    assert round(contrast("#1a7f37", "#e6f4ea"), 2) == 4.47  # the green that was too light


@pytest.mark.parametrize("status", STATUSES)
def test_a_status_colour_reads_at_aa_on_its_badge_the_card_and_the_paper(status):
    palette = colours()
    text = palette[status]

    for background in (palette[f"{status}-bg"], palette["card"], palette["paper"]):
        assert contrast(text, background) >= 4.5, (status, text, background)
