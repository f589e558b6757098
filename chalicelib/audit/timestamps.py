"""Audit timestamps: RFC 3339, UTC, millisecond precision, e.g. ``2026-11-22T13:40:29.123Z``.

One fixed-width form, so that string order is time order: the table's indexes sort records
by the ``time`` string, and time-range queries compare strings.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})")


def format_time(moment: datetime) -> str:
    """``moment`` as the audit form (UTC, milliseconds, ``Z``); naive datetimes are refused."""
    if moment.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_time(text: str) -> datetime:
    """An RFC 3339 date-time (``Z`` or an offset, optional fraction) as an aware datetime.

    Raises ValueError naming the expected form. Fractions beyond microseconds are cut, which
    keeps ``since``/``until`` bounds inclusive at the precision records are written with.
    """
    if not isinstance(text, str) or not _RFC3339.fullmatch(text):
        raise ValueError(f"{text!r} is not an RFC 3339 time such as 2026-11-22T13:40:29Z")
    main, zone = text[:19], text[19:]
    fraction = ""
    if zone.startswith("."):
        digits = re.match(r"\.(\d+)", zone)
        assert digits is not None  # guaranteed by _RFC3339
        fraction = digits.group(1)[:6].ljust(6, "0")
        zone = zone[digits.end() :]
    try:
        moment = datetime.fromisoformat(
            main + (f".{fraction}" if fraction else "") + ("+00:00" if zone == "Z" else zone)
        )
    except ValueError as exc:
        raise ValueError(f"{text!r} is not a valid time: {exc}") from None
    return moment


def normalize_time(text: str) -> str:
    """Any RFC 3339 date-time as the audit form, for comparing against stored ``time``."""
    return format_time(parse_time(text))
