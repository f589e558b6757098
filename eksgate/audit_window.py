"""The audit records of a time window, read through the auditor API (never the table).

``GET /v1/sessions`` lists sessions (at most 500 per call, newest first), so the window is
walked backwards with ``until``; each session's records come from ``GET /v1/sessions/{id}``
and their hash chain is recomputed here: evidence that does not verify is not used.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.audit.chain import verify_chain
from chalicelib.audit.records import SessionRecord, record_from_json
from chalicelib.audit.timestamps import format_time
from chalicelib.policy.durations import parse_duration
from eksgate.api_client import CliError

PAGE_SIZE = 500
MAX_PAGES = 200

# (path, query parameters) -> the API's JSON answer
ApiGet = Callable[[str, dict[str, str] | None], dict[str, Any]]


@dataclass
class Window:
    """The records read, and what could not be used (sessions whose chain is broken)."""

    since: str
    records: list[SessionRecord] = field(default_factory=list)
    broken_sessions: list[str] = field(default_factory=list)
    sessions: int = 0


def since_time(duration: str, now: datetime | None = None) -> str:
    """The audit-form time ``duration`` (``30d``, ``12h``) before now; ValueError otherwise."""
    moment = (now or datetime.now(UTC)) - timedelta(seconds=parse_duration(duration))
    return format_time(moment)


def session_ids(get: ApiGet, selector: dict[str, str], since: str) -> list[str]:
    """Every session with records since ``since`` for ``selector`` (identity or cluster)."""
    seen: dict[str, None] = {}
    until: str | None = None
    for _ in range(MAX_PAGES):
        params = {**selector, "since": since, "limit": str(PAGE_SIZE)}
        if until:
            params["until"] = until
        answer = get("/v1/sessions", params)
        sessions = answer.get("sessions")
        if not isinstance(sessions, list):
            raise CliError("the gateway's session list is not in the expected form")
        new = [s for s in sessions if isinstance(s, dict) and s.get("session_id") not in seen]
        for summary in new:
            seen[str(summary["session_id"])] = None
        if len(sessions) < PAGE_SIZE or not new:
            return list(seen)
        until = min(str(s.get("last_time", "")) for s in sessions)
    raise CliError(f"more than {MAX_PAGES * PAGE_SIZE} sessions in the window; narrow it")


def read_window(get: ApiGet, selectors: list[dict[str, str]], since: str) -> Window:
    """The records since ``since`` of every session the selectors list, chains verified."""
    window = Window(since=since)
    ids: dict[str, None] = {}
    for selector in selectors:
        ids.update(dict.fromkeys(session_ids(get, selector, since)))
    for session_id in ids:
        answer = get("/v1/sessions/" + urllib.parse.quote(session_id, safe=""), None)
        raw = answer.get("records")
        try:
            if not isinstance(raw, list):
                raise TypeError("no list of records")
            records = [record_from_json(item) for item in raw]
        except (TypeError, ValueError):
            window.broken_sessions.append(session_id)
            continue
        if not verify_chain(session_id, records).ok:
            window.broken_sessions.append(session_id)
            continue
        window.sessions += 1
        window.records.extend(r for r in records if r.time >= since)
    return window
