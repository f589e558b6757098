"""Grouping audit records into per-session summaries for a listing. Pure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from chalicelib.audit.records import SessionRecord, SessionSummary
from chalicelib.audit.timestamps import format_time, parse_time

# How far back past the oldest listed session's newest record we keep reading so that the
# listed sessions' older records are counted too. A gateway token lives at most 15 minutes;
# approval events of a session can come later, up to an approval's lifetime.
DEFAULT_SESSION_SPAN = timedelta(hours=1)


@dataclass
class _Tally:
    session_id: str
    subject: str
    cluster: str
    first_time: str
    last_time: str
    records: int = 0
    decisions: dict[str, int] = field(default_factory=dict)
    approval_ids: set[str] = field(default_factory=set)

    def add(self, record: SessionRecord) -> None:
        self.records += 1
        self.first_time = min(self.first_time, record.time)
        self.last_time = max(self.last_time, record.time)
        # A record written before the caller was known (a refused token request) has no
        # subject or cluster; any other record of the session names them.
        self.subject = self.subject or record.subject
        self.cluster = self.cluster or record.cluster
        effect = (record.decision or {}).get("effect")
        if isinstance(effect, str) and effect:
            self.decisions[effect] = self.decisions.get(effect, 0) + 1
        if record.approval_id:
            self.approval_ids.add(record.approval_id)

    def summary(self) -> SessionSummary:
        return SessionSummary(
            self.session_id,
            self.subject,
            self.cluster,
            self.first_time,
            self.last_time,
            self.records,
            dict(sorted(self.decisions.items())),
            len(self.approval_ids),
        )


def summarize_newest_first(
    records: Iterable[SessionRecord], limit: int, span: timedelta = DEFAULT_SESSION_SPAN
) -> list[SessionSummary]:
    """Up to ``limit`` sessions, most recently active first, from records newest first.

    A session is listed when its newest record is met. Once ``limit`` sessions are listed,
    records of other sessions are skipped, and reading stops at the first record older
    than ``span`` before the oldest listed session's newest record: the listed sessions
    cannot reach further back than that, so the iterator (pages of a query) is not drained.
    """
    if limit < 1:
        return []
    tallies: dict[str, _Tally] = {}
    stop_before: str | None = None
    for record in records:
        if stop_before is not None and record.time < stop_before:
            break
        tally = tallies.get(record.session_id)
        if tally is None:
            if len(tallies) >= limit:
                continue
            tally = tallies[record.session_id] = _Tally(
                record.session_id, record.subject, record.cluster, record.time, record.time
            )
            if len(tallies) == limit:
                stop_before = _earlier(record.time, span)
        tally.add(record)
    summaries = [t.summary() for t in tallies.values()]
    summaries.sort(key=lambda s: (s.last_time, s.session_id), reverse=True)
    return summaries


def summarize_session(records: Iterable[SessionRecord]) -> SessionSummary | None:
    """The summary of one session's ``records`` (already filtered); None if there are none."""
    tally: _Tally | None = None
    for record in records:
        if tally is None:
            tally = _Tally(
                record.session_id, record.subject, record.cluster, record.time, record.time
            )
        tally.add(record)
    return tally.summary() if tally else None


def _earlier(time: str, span: timedelta) -> str | None:
    try:
        return format_time(parse_time(time) - span)
    except ValueError:
        return None  # an unreadable time (a tampered record): read on rather than guess
