"""The audit table's stream: each session's head anchored in S3 (Object Lock), and the new
records exported as JSON lines for a SIEM to pick up.

Per stage, ``EKSGATE_EXPORT_FORMAT`` chooses what is exported: ``records`` (eksgate's own
records; the default), ``k8s-audit`` (``audit.k8s.io/v1`` Events under
``EKSGATE_EXPORT_K8S_PREFIX``, levels from the audit Policy file named by
``EKSGATE_EXPORT_K8S_POLICY``), or ``both``. Anchors are written whatever the format.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from chalicelib.audit.anchor_store import write_anchors
from chalicelib.audit.anchors import heads
from chalicelib.audit.export import records_from_stream, write_jsonl
from chalicelib.audit.k8s_policy import METADATA_FOR_ALL, AuditPolicy, load_policy
from chalicelib.audit.k8s_stream import events_for_batch
from chalicelib.audit.records import SessionRecord
from chalicelib.observability import count, logger

EXPORT_FORMATS = ("records", "k8s-audit", "both")


def export_stream_event(
    event: Mapping[str, Any],
    s3_client: Any,
    bucket: str | None = None,
    prefix: str | None = None,
    session_records: Callable[[str], list[SessionRecord]] | None = None,
    anchor_bucket: str | None = None,
) -> int:
    """Anchor, then export, the new audit records of one stream batch.

    Anchors come first: they are what makes a deleted tail or a rewritten suffix detectable.
    S3 errors propagate so Lambda retries the batch (anchors are idempotent, keyed by hash).
    ``session_records`` reads a session back from the table; the k8s-audit format needs it.
    """
    bucket = bucket or os.environ.get("EKSGATE_EXPORT_BUCKET", "")
    anchor_bucket = anchor_bucket or os.environ.get("EKSGATE_ANCHOR_BUCKET", "")
    if not bucket or not anchor_bucket:
        raise RuntimeError(
            "EKSGATE_EXPORT_BUCKET and EKSGATE_ANCHOR_BUCKET must be set; the audit stream "
            "has nowhere to write (see infra/template.yaml)"
        )
    export_format = os.environ.get("EKSGATE_EXPORT_FORMAT", "records") or "records"
    if export_format not in EXPORT_FORMATS:
        raise RuntimeError(
            f"EKSGATE_EXPORT_FORMAT is {export_format!r}; use one of {', '.join(EXPORT_FORMATS)}"
        )
    # Read first: a bad policy file fails the batch before anything is written, so a retry
    # does not write the records twice.
    policy = _export_policy() if export_format != "records" else METADATA_FOR_ALL
    records = records_from_stream(event)
    now = datetime.now(UTC)
    anchors = heads(records)
    if anchors:
        new = write_anchors(s3_client, anchor_bucket, anchors, now)
        count("AuditHeadsAnchored", new)
        logger.info("audit heads anchored", extra={"sessions": len(anchors), "new": new})
    if export_format in ("records", "both"):
        records_prefix = prefix or os.environ.get("EKSGATE_EXPORT_PREFIX", "audit")
        key = write_jsonl(s3_client, bucket, records_prefix, records, now)
        if key:
            count("AuditRecordsExported", len(records))
            logger.info("audit records exported", extra={"records": len(records), "key": key})
    if export_format in ("k8s-audit", "both"):
        if session_records is None:
            raise RuntimeError("the k8s-audit export needs the audit table to read sessions from")
        events = events_for_batch(records, session_records, policy)
        events_prefix = os.environ.get("EKSGATE_EXPORT_K8S_PREFIX", "k8s-audit")
        key = write_jsonl(s3_client, bucket, events_prefix, events, now)
        if key:
            count("KubernetesAuditEventsExported", len(events))
            logger.info("k8s audit events exported", extra={"events": len(events), "key": key})
    return len(records)


def _export_policy() -> AuditPolicy:
    path = os.environ.get("EKSGATE_EXPORT_K8S_POLICY", "")
    if not path:
        return METADATA_FOR_ALL
    # A bad policy file fails the batch (Lambda retries, the alarm fires) rather than
    # exporting at a level nobody chose.
    return load_policy(Path(path).read_text(encoding="utf-8"), path)
