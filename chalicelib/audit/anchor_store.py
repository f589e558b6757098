"""Anchors in S3: written by the stream consumer, listed for the auditor route.

The bucket has Object Lock in compliance mode with a default retention (infra/template.yaml),
so every object version written here is undeletable until it expires. The writer sets no
retention of its own (the function has no ``s3:PutObjectRetention``), so the bucket's
default always applies.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.audit.anchors import Anchor, anchor_from_key, anchor_key, session_prefix


def write_anchors(s3_client: Any, bucket: str, anchors: Sequence[Anchor], now: datetime) -> int:
    """Write one locked object per anchor; return how many were new.

    ``IfNoneMatch`` keeps a retried batch from adding versions of a key that exists (the key
    holds the hash, so an existing key is this very anchor). Other errors propagate, so the
    stream handler fails and Lambda retries the batch.
    """
    written = 0
    for anchor in anchors:
        body = {
            "session_id": anchor.session_id,
            "seq": anchor.seq,
            "hash": anchor.hash,
            "anchored_at": now.isoformat(),
        }
        try:
            s3_client.put_object(
                Bucket=bucket,
                Key=anchor_key(anchor),
                Body=json.dumps(body, sort_keys=True).encode("utf-8"),
                ContentType="application/json",
                # Object Lock buckets refuse writes without an integrity checksum.
                ChecksumAlgorithm="SHA256",
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
                continue  # already anchored
            raise
        written += 1
    return written


def list_anchors(s3_client: Any, bucket: str, session_id: str) -> list[Anchor]:
    """Every anchor of ``session_id``, from every object version (a delete marker hides none).

    Keys of any other form under the session's prefix are not anchors and are skipped.
    """
    prefix = session_prefix(session_id)
    found: dict[tuple[int, str], Anchor] = {}
    marker: dict[str, str] = {}
    while True:
        answer = s3_client.list_object_versions(Bucket=bucket, Prefix=prefix, **marker)
        for version in answer.get("Versions") or []:
            stored = version.get("LastModified")
            when = stored.isoformat() if isinstance(stored, datetime) else str(stored or "")
            anchor = anchor_from_key(session_id, version["Key"], when)
            if anchor is None:
                continue
            earlier = found.get((anchor.seq, anchor.hash))
            if earlier is None or when < earlier.anchored_at:
                found[(anchor.seq, anchor.hash)] = anchor
        if not answer.get("IsTruncated"):
            break
        marker = {"KeyMarker": answer["NextKeyMarker"]}
        if answer.get("NextVersionIdMarker"):
            marker["VersionIdMarker"] = answer["NextVersionIdMarker"]
    return sorted(found.values(), key=lambda a: (a.seq, a.hash))
