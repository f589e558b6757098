"""The hash chain that makes a session's records tamper-evident. Pure.

Record N's ``hash`` is ``sha256(prev_hash + canonical_json(record without hash))`` and its
``prev_hash`` is record N-1's ``hash`` (record 0 starts from ``genesis_hash(session_id)``).
Changing any field of a record breaks its hash; replacing a record with one re-hashed by an
attacker breaks the next record's ``prev_hash``; removing a record leaves a gap in ``seq``.

What a chain alone cannot show: that records were removed from the end, or that the whole
chain from some record onwards was rewritten and re-hashed. Both need an anchor kept outside
the table: the session's last hash or record count, e.g. from the S3 export or an earlier
``eksgate sessions verify``; ``verify_chain`` takes them as ``expected_last_hash`` and
``expected_count``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from chalicelib.audit.records import (
    RECORD_FIELDS,
    SessionRecord,
    record_from_fields,
    type_problems,
)


def genesis_hash(session_id: str) -> str:
    """The ``prev_hash`` of a session's record 0: ties the chain to its session."""
    return hashlib.sha256(b"eksgate-audit:" + session_id.encode("utf-8")).hexdigest()


def canonical_json(fields: Mapping[str, Any]) -> bytes:
    """The bytes a record's hash covers: every field but ``hash``, in one fixed spelling.

    Sorted keys, no whitespace, UTF-8 (not ``\\u`` escapes). Numbers are spelled by value,
    not type: an integral float is written as an int, so 12.0 sealed in Lambda and the 12
    DynamoDB hands back (it keeps no trailing zeros) hash the same.
    """
    body = {key: _canonical(value) for key, value in fields.items() if key != "hash"}
    return json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def compute_hash(fields: Mapping[str, Any]) -> str:
    """The hash of a record whose fields (including ``prev_hash``) are ``fields``."""
    prev_hash = fields["prev_hash"]
    return hashlib.sha256(prev_hash.encode("utf-8") + canonical_json(fields)).hexdigest()


def seal(fields: Mapping[str, Any], prev_hash: str) -> SessionRecord:
    """The SessionRecord of ``fields`` (every record field but the hashes) after ``prev_hash``."""
    if "prev_hash" in fields and fields["prev_hash"] != prev_hash:
        raise ValueError("fields already carry a different prev_hash")
    expected = set(RECORD_FIELDS) - {"prev_hash", "hash"}
    given = set(fields) - {"prev_hash", "hash"}
    if given != expected:
        problems = []
        if expected - given:
            problems.append(f"missing {', '.join(sorted(expected - given))}")
        if given - expected:
            problems.append(f"unknown {', '.join(sorted(given - expected))}")
        raise ValueError(f"cannot seal an audit record: {'; '.join(problems)}")
    body = {key: value for key, value in fields.items() if key != "hash"}
    body["prev_hash"] = prev_hash
    return record_from_fields({**body, "hash": compute_hash(body)})


@dataclass(frozen=True)
class Problem:
    """The first broken link: which record, what is wrong (``code``), and a sentence."""

    seq: int
    # altered | missing | prev_hash | order | session | malformed | count | last_hash
    code: str
    message: str


@dataclass(frozen=True)
class ChainReport:
    """The outcome of ``verify_chain``: ``checked`` records verified before any problem."""

    ok: bool
    checked: int
    first_problem: Problem | None = None


def verify_chain(
    session_id: str,
    records: Sequence[SessionRecord],
    *,
    expected_count: int | None = None,
    expected_last_hash: str | None = None,
) -> ChainReport:
    """Check that ``records``, in the order given, are session ``session_id``'s intact chain.

    ``expected_count`` and ``expected_last_hash`` come from an anchor kept elsewhere; with
    them, records removed from the end (and a rewritten tail) are detected too.
    """
    prev_hash = genesis_hash(session_id)
    checked = 0
    for position, record in enumerate(records):
        problem = _first_problem(session_id, records, position, record, prev_hash)
        if problem is not None:
            return ChainReport(False, checked, problem)
        prev_hash = record.hash
        checked += 1
    if expected_count is not None and checked != expected_count:
        if checked < expected_count:
            message = (
                f"record {checked} is missing (the session had {expected_count} "
                f"records, {checked} remain)"
            )
        else:
            message = f"the session has {checked} records where {expected_count} were expected"
        return ChainReport(False, checked, Problem(checked, "count", message))
    if expected_last_hash is not None and prev_hash != expected_last_hash:
        last = checked - 1
        return ChainReport(
            False,
            checked,
            Problem(
                max(last, 0),
                "last_hash",
                f"the chain does not end at the expected hash: records after {last} are missing "
                "or records were rewritten",
            ),
        )
    return ChainReport(True, checked)


def _first_problem(
    session_id: str,
    records: Sequence[SessionRecord],
    position: int,
    record: SessionRecord,
    prev_hash: str,
) -> Problem | None:
    wrong = type_problems(vars(record))
    if wrong:
        return Problem(
            position,
            "malformed",
            f"record at position {position} is malformed (wrong type: {', '.join(wrong)})",
        )
    seq = record.seq
    if record.session_id != session_id:
        return Problem(
            seq, "session", f"record {seq} belongs to another session ({record.session_id!r})"
        )
    if seq != position:
        if seq < position or any(r.seq == position for r in records[position + 1 :]):
            return Problem(
                seq, "order", f"records out of order: record {seq} is at position {position}"
            )
        return Problem(position, "missing", f"record {position} is missing")
    try:
        intact = compute_hash(record.sealed_fields()) == record.hash
    except (TypeError, ValueError):
        intact = False  # a value with no JSON spelling cannot be what was sealed
    if not intact:
        return Problem(seq, "altered", f"record {seq} was altered (hash mismatch)")
    if record.prev_hash != prev_hash:
        return Problem(
            seq, "prev_hash", f"record {seq} does not follow record {seq - 1} (prev_hash mismatch)"
        )
    return None


def report_json(report: ChainReport) -> dict[str, Any]:
    """The report as the API shows it: ``{"ok", "checked", "problem"}`` (a sentence or null)."""
    problem = report.first_problem
    return {
        "ok": report.ok,
        "checked": report.checked,
        "problem": problem.message if problem else None,
    }


def _canonical(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    raise TypeError(f"{type(value).__name__} cannot be part of an audit record")
