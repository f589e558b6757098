"""Anchors: a session's head (seq and hash of its newest record) kept outside the table. Pure.

An anchor is one S3 object whose key alone says what it pins:
``anchors/<session id, %-quoted>/<seq, 12 digits>-<hash>``. The key is immutable, so listing
the session's keys (every version) gives every anchor without reading a body. Under Object
Lock (compliance mode) no one, the account's root included, can delete or replace an anchor
before its retention ends; anyone able to write one can only add another key, which the
check reports as a conflict rather than hiding anything.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ANCHOR_PREFIX = "anchors/"
_SEQ_DIGITS = 12
_HASH = re.compile(r"[0-9a-f]{64}")
_TAIL = re.compile(r"(?P<seq>[0-9]{1,20})-(?P<hash>[0-9a-f]{64})")


@dataclass(frozen=True)
class Anchor:
    """Record ``seq`` of ``session_id`` had hash ``hash`` when the anchor was written."""

    session_id: str
    seq: int
    hash: str
    anchored_at: str = ""  # when S3 stored it (informational; the key is the evidence)

    def to_json_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "hash": self.hash, "anchored_at": self.anchored_at}


def session_prefix(session_id: str) -> str:
    """The key prefix of one session's anchors; no other session's keys share it."""
    if not session_id:
        raise ValueError("an anchor needs a session id")
    return f"{ANCHOR_PREFIX}{urllib.parse.quote(session_id, safe='')}/"


def anchor_key(anchor: Anchor) -> str:
    """The object key that pins ``anchor``."""
    if anchor.seq < 0 or not _HASH.fullmatch(anchor.hash):
        raise ValueError(f"not an anchor: seq {anchor.seq}, hash {anchor.hash!r}")
    return f"{session_prefix(anchor.session_id)}{anchor.seq:0{_SEQ_DIGITS}d}-{anchor.hash}"


def anchor_from_key(session_id: str, key: str, anchored_at: str = "") -> Anchor | None:
    """The anchor a key of ``session_id`` pins; None for a key of any other form."""
    prefix = session_prefix(session_id)
    if not key.startswith(prefix):
        return None
    match = _TAIL.fullmatch(key[len(prefix) :])
    if match is None:
        return None
    return Anchor(session_id, int(match["seq"]), match["hash"], anchored_at)


def heads(records: Iterable[Mapping[str, Any]]) -> list[Anchor]:
    """The newest record of each session among ``records`` (plain dicts from the stream).

    One anchor per session per batch is enough: the chain pins every earlier record to it.
    Items that are not records eksgate wrote (no string session id, no whole seq, no hash)
    pin nothing and are left out.
    """
    newest: dict[str, Anchor] = {}
    for record in records:
        session_id, seq, digest = (record.get(k) for k in ("session_id", "seq", "hash"))
        if not isinstance(session_id, str) or not session_id:
            continue
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            continue
        if not isinstance(digest, str) or not _HASH.fullmatch(digest):
            continue
        current = newest.get(session_id)
        if current is None or seq > current.seq:
            newest[session_id] = Anchor(session_id, seq, digest)
    return sorted(newest.values(), key=lambda a: (a.session_id, a.seq))
