"""The audit table's stream: each session's head anchored in S3 (Object Lock), and the new
records exported as JSON lines for a SIEM to pick up."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any, Mapping

from chalicelib.audit.anchor_store import write_anchors
from chalicelib.audit.anchors import heads
from chalicelib.audit.export import records_from_stream, write_jsonl
from chalicelib.observability import count, logger


def export_stream_event(
    event: Mapping[str, Any],
    s3_client: Any,
    bucket: str | None = None,
    prefix: str | None = None,
    anchor_bucket: str | None = None,
) -> int:
    """Anchor, then export, the new audit records of one stream batch.

    Anchors come first: they are what makes a deleted tail or a rewritten suffix detectable.
    S3 errors propagate so Lambda retries the batch (anchors are idempotent, keyed by hash).
    """
    bucket = bucket or os.environ.get("EKSGATE_EXPORT_BUCKET", "")
    anchor_bucket = anchor_bucket or os.environ.get("EKSGATE_ANCHOR_BUCKET", "")
    if not bucket or not anchor_bucket:
        raise RuntimeError(
            "EKSGATE_EXPORT_BUCKET and EKSGATE_ANCHOR_BUCKET must be set; the audit stream "
            "has nowhere to write (see infra/template.yaml)"
        )
    now = datetime.now(timezone.utc)
    records = records_from_stream(event)
    anchors = heads(records)
    if anchors:
        new = write_anchors(s3_client, anchor_bucket, anchors, now)
        count("AuditHeadsAnchored", new)
        logger.info("audit heads anchored", extra={"sessions": len(anchors), "new": new})
    key = write_jsonl(
        s3_client,
        bucket,
        prefix or os.environ.get("EKSGATE_EXPORT_PREFIX", "audit"),
        records,
        now,
    )
    if key:
        count("AuditRecordsExported", len(records))
        logger.info("audit records exported", extra={"records": len(records), "key": key})
    return len(records)
