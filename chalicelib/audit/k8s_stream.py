"""Kubernetes audit events for one batch of the audit table's stream.

A forwarded request is two records that may arrive in different batches, so an event is
made when its last record arrives (the response, or the refusal), from the whole session
read back from the table: each event is written once, when the batch holding its last
record is exported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from chalicelib.audit.k8s_events import ANNOTATION_PREFIX, k8s_audit_events
from chalicelib.audit.k8s_policy import METADATA_FOR_ALL, AuditPolicy
from chalicelib.audit.records import SessionRecord

_LAST_KINDS = ("response", "refusal", "gateway_response")


def events_for_batch(
    records: Sequence[Mapping[str, Any]],
    session_records: Callable[[str], list[SessionRecord]],
    policy: AuditPolicy = METADATA_FOR_ALL,
) -> list[dict[str, Any]]:
    """The events whose last record is in ``records`` (plain dicts from the stream)."""
    finishing: dict[str, set[str]] = {}
    for record in records:
        if record.get("kind") in _LAST_KINDS and record.get("session_id") and record.get("hash"):
            finishing.setdefault(str(record["session_id"]), set()).add(str(record["hash"]))
    events = []
    for session_id, hashes in finishing.items():
        for event in k8s_audit_events(session_records(session_id), policy):
            if event["annotations"].get(ANNOTATION_PREFIX + "chain-hash") in hashes:
                events.append(event)
    return events
