"""The audit table's stream, exported as JSON lines to S3 for a SIEM to pick up."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any, Mapping

from chalicelib.audit.export import records_from_stream, write_jsonl
from chalicelib.observability import count, logger


def export_stream_event(
    event: Mapping[str, Any], s3_client: Any, bucket: str | None = None, prefix: str | None = None
) -> int:
    """Write the new audit records of one stream batch; S3 errors propagate so Lambda retries."""
    bucket = bucket or os.environ.get("EKSGATE_EXPORT_BUCKET", "")
    if not bucket:
        raise RuntimeError(
            "EKSGATE_EXPORT_BUCKET is not set; the audit export has nowhere to "
            "write (see infra/template.yaml)"
        )
    records = records_from_stream(event)
    key = write_jsonl(
        s3_client,
        bucket,
        prefix or os.environ.get("EKSGATE_EXPORT_PREFIX", "audit"),
        records,
        datetime.now(timezone.utc),
    )
    if key:
        count("AuditRecordsExported", len(records))
        logger.info("audit records exported", extra={"records": len(records), "key": key})
    return len(records)
