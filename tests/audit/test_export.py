"""The stream export: inserted records, as JSON Lines, in S3."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from boto3.dynamodb.types import TypeSerializer

from chalicelib.audit.chain import verify_chain
from chalicelib.audit.export import records_from_stream, write_jsonl
from chalicelib.audit.items import record_to_item
from chalicelib.audit.records import record_from_json
from tests.audit.helpers import sealed_chain

SID = "5f0c1d2e3a4b5c6d7e8f90a1b2c3d4e5"
ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/eksgate-audit/stream/2026-11-22T00:00:00.000"


def _stream_entry(name, keys, new_image=None, user_identity=None):
    change = {
        "ApproximateCreationDateTime": 1795354829.0,
        "Keys": keys,
        "SequenceNumber": "4421584500000000017450439091",
        "SizeBytes": 900,
        "StreamViewType": "NEW_IMAGE",
    }
    if new_image is not None:
        change["NewImage"] = new_image
    entry = {
        "eventID": "c4ca4238a0b923820dcc509a6f75849b",
        "eventName": name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": change,
        "eventSourceARN": ARN,
    }
    if user_identity:
        entry["userIdentity"] = user_identity
    return entry


def _stream_event():
    serializer = TypeSerializer()
    records = sealed_chain(SID, 2)
    keys = {"session_id": serializer.serialize(SID), "seq": serializer.serialize(0)}
    return records, {
        "Records": [
            _stream_entry("INSERT", keys, record_to_item(records[0])),
            _stream_entry(
                "REMOVE",
                keys,
                user_identity={"type": "Service", "principalId": "dynamodb.amazonaws.com"},
            ),
            _stream_entry("MODIFY", keys, record_to_item(records[0])),
            _stream_entry("INSERT", keys, record_to_item(records[1])),
        ]
    }


def test_only_inserted_records_are_exported_and_they_still_verify():
    records, event = _stream_event()
    exported = records_from_stream(event)
    assert exported == [r.to_json_dict() for r in records]
    assert verify_chain(SID, [record_from_json(r) for r in exported]).ok


def test_an_empty_event_exports_nothing(aws):
    assert records_from_stream({"Records": []}) == []
    assert write_jsonl(aws.client("s3"), "audit-bucket", "audit", [], datetime.now(UTC)) is None


def test_records_land_in_s3_as_encrypted_json_lines_under_the_hour(aws):
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="audit-bucket")
    records, event = _stream_event()
    now = datetime(2026, 11, 22, 13, 40, 29, tzinfo=UTC)
    key = write_jsonl(s3, "audit-bucket", "/audit/", records_from_stream(event), now)
    assert key.startswith("audit/2026/11/22/13/") and key.endswith(".jsonl")
    stored = s3.get_object(Bucket="audit-bucket", Key=key)
    assert stored["ContentType"] == "application/x-ndjson"
    assert stored["ServerSideEncryption"] == "AES256"
    lines = stored["Body"].read().decode().splitlines()
    assert [json.loads(line) for line in lines] == [r.to_json_dict() for r in records]


def test_an_item_eksgate_did_not_write_is_kept_verbatim():
    image = {"session_id": {"S": SID}, "seq": {"N": "9"}, "blob": {"B": "AAEC"}}
    exported = records_from_stream({"Records": [_stream_entry("INSERT", {}, image)]})
    assert exported == [{"unreadable_item": image}]
