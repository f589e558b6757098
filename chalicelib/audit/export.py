"""A copy of every audit record in S3, from the AuditTable's stream.

The copy is the chain's outside anchor: records removed or rewritten in the table still
exist here, with their hashes. Objects are JSON Lines, one per stream batch, under
``prefix/YYYY/MM/DD/HH/`` so that an S3 lifecycle rule or Athena partitioning can use them.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from chalicelib.audit.items import exported_from_item, plain_from_item
from chalicelib.observability import logger

# TTL deletions are REMOVE events made by this principal; any other REMOVE, or any MODIFY,
# is a change the app's IAM policy does not allow and is worth someone's attention.
_TTL_PRINCIPAL = "dynamodb.amazonaws.com"


def records_from_stream(event: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The records a DynamoDB stream event inserted, as plain JSON dicts, in stream order.

    Every attribute of the new item is kept (not just the ones SessionRecord knows), so the
    copy is what was written; a compact (version 2) item is written out as the record it
    holds, every field under its own name, as a version 1 item is (``exported_from_item``).
    MODIFY and REMOVE events carry no new record and are skipped; those that TTL did not
    make are logged as warnings.
    """
    inserted = []
    for entry in event.get("Records") or []:
        name = entry.get("eventName")
        change = entry.get("dynamodb") or {}
        if name == "INSERT" and change.get("NewImage"):
            inserted.append(_plain_image(change["NewImage"]))
        elif name in ("MODIFY", "REMOVE") and not _by_ttl(entry):
            logger.warning(
                "audit record changed outside the append path",
                extra={"event_name": name, "keys": plain_from_item(change.get("Keys") or {})},
            )
    return inserted


def write_jsonl(
    s3_client: Any, bucket: str, prefix: str, records: Sequence[Mapping[str, Any]], now: datetime
) -> str | None:
    """Write ``records`` as one JSON Lines object; return its key, or None if there are none.

    Errors propagate, so the stream handler fails and Lambda retries the batch rather than
    losing it.
    """
    if not records:
        return None
    hour = now.astimezone(UTC).strftime("%Y/%m/%d/%H")
    key = "/".join(part for part in (prefix.strip("/"), hour, f"{uuid.uuid4()}.jsonl") if part)
    body = "".join(
        json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"
        for record in records
    )
    s3_client.put_object(
        Bucket=bucket,
        Key=key,
        Body=body.encode("utf-8"),
        ContentType="application/x-ndjson",
        ServerSideEncryption="AES256",
    )
    return key


def _plain_image(image: Mapping[str, Any]) -> dict[str, Any]:
    try:
        return exported_from_item(image)
    except (TypeError, ValueError, KeyError):
        # Not something eksgate writes (a binary or set attribute, a packed field that does
        # not inflate): keep it verbatim rather than fail the batch, which Lambda would
        # retry forever.
        logger.warning("audit stream carried an item eksgate did not write")
        return {"unreadable_item": _json_safe(image)}


def _json_safe(value: Any) -> Any:
    """``value`` with binary values as base64 text (a stream event's own spelling)."""
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_json_safe(v) for v in value]
    return value


def _by_ttl(entry: Mapping[str, Any]) -> bool:
    identity = entry.get("userIdentity") or {}
    return (
        entry.get("eventName") == "REMOVE"
        and identity.get("type") == "Service"
        and identity.get("principalId") == _TTL_PRINCIPAL
    )
