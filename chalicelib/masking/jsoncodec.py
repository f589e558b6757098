"""JSON in and out of the masker: orjson where it can, the standard library where it cannot.

orjson is several times faster than ``json`` for the multi-megabyte answers the gateway
masks. It refuses a few things the standard library accepts (lone surrogates in strings,
integers beyond 64 bits on output); those documents go through ``json`` instead.
"""

from __future__ import annotations

import json
import re
from typing import Any


class _LazyOrjson:
    """orjson, imported on first use: the CLI imports masking for its names only."""

    def __getattr__(self, name: str) -> Any:
        import orjson

        globals()["orjson"] = orjson
        return getattr(orjson, name)


orjson: Any = _LazyOrjson()


# orjson reads an integer beyond 64 bits as a float (losing digits); json keeps it exact.
_LONG_NUMBER = re.compile(r"[0-9]{20}")
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")


def has_long_number(raw: bytes | str) -> bool:
    """Whether ``raw`` may hold an integer orjson would not read exactly (20+ digits)."""
    if isinstance(raw, str):
        return _LONG_NUMBER.search(raw) is not None
    # Two native passes; a regular expression over megabytes of base64 is ten times slower.
    return raw.translate(_DIGITS_AS_ZERO).find(b"0" * 20) != -1


def loads(raw: bytes | str, *, long_numbers: bool = True) -> Any:
    """Decode JSON; NaN and Infinity (not JSON, and refused by Go clients) are errors.

    ``long_numbers=False``: the caller has checked (``has_long_number``, once for a whole
    answer rather than once per piece) that ``raw`` holds no 20-digit run.
    """
    if long_numbers and has_long_number(raw):
        return _standard_loads(raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        # Lone surrogates (\ud800) are valid JSON escapes orjson refuses; json accepts them.
        escaped = b"\\u" in raw if isinstance(raw, bytes) else "\\u" in raw
        if not escaped:
            raise
    return _standard_loads(raw)


def _standard_loads(raw: bytes | str) -> Any:
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def dumps(value: Any) -> bytes:
    """Compact JSON, UTF-8, non-ASCII as is (as Kubernetes writes it) when orjson can."""
    try:
        return orjson.dumps(value)
    except TypeError:
        # ensure_ascii: a lone surrogate is written as its escape, never as invalid UTF-8.
        return json.dumps(value, separators=(",", ":")).encode("ascii")


def dumps_text(value: Any) -> str:
    return dumps(value).decode("utf-8", "surrogatepass")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"non-standard JSON constant {name}")
