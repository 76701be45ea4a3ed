"""The web UI's colours meet WCAG AA: text at least 4.5:1 against the background it is drawn on."""

from __future__ import annotations

import re
from pathlib import Path

import cairn.web

CSS = (Path(cairn.web.__file__).parent / "static" / "cairn.css").read_text()
LOG_BACKGROUND = "#1e1e1e"


def luminance(colour: str) -> float:
    digits = colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    channels = [int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    light, dark = sorted((luminance(a), luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_state_badges_are_readable():
    badges = re.findall(r"\.state-[\w, .-]+\{ background: (#\w+); color: (#\w+); \}", CSS)
    assert len(badges) == 6
    for background, text in badges:
        assert contrast(background, text) >= 4.5, (background, text)


def test_log_colours_are_readable_on_the_log():
    foreground = re.findall(r"\.ansi(?:3\d|9\d) \{ color: (#\w+); \}", CSS)
    assert len(foreground) == 16
    for colour in foreground:
        assert contrast(colour, LOG_BACKGROUND) >= 4.5, colour
    for background in re.findall(r"\.ansi4[0-6] \{ background: (#\w+); \}", CSS):
        assert contrast(background, "#e6e6e6") >= 4.5, background
