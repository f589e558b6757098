"""Durations as policies write them: ``90s``, ``15m``, ``1h30m``, ``2d``."""

from __future__ import annotations

import re

DURATION_PATTERN = r"^(?=\d)(\d+d)?(\d+h)?(\d+m)?(\d+s)?$"
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> int:
    """Seconds in ``text``; ValueError naming the expected form otherwise."""
    if not isinstance(text, str) or not re.match(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration like 30s, 15m, 1h30m or 2d")
    return sum(int(n) * _UNITS[u] for n, u in re.findall(r"(\d+)([dhms])", text))
