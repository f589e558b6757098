"""Anchors in an Object Lock bucket (moto enforces compliance-mode retention on deletes),
written from the stream and returned by the auditor route."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import ClientError
from eksgate_local.aws import create_audit_buckets

from chalicelib.audit.anchor_check import check_anchors
from chalicelib.audit.anchor_store import list_anchors, write_anchors
from chalicelib.audit.anchors import Anchor, anchor_key
from chalicelib.audit.items import record_to_item
from chalicelib.errors import ServiceUnavailable
from chalicelib.routes.audit_export import export_stream_event
from chalicelib.routes.sessions import s3_anchor_reader, session_response
from tests.audit.helpers import sealed_chain

SID = "5f0c1d2e3a4b5c6d7e8f90a1b2c3d4e5"
ANCHORS = "eksgate-test-audit-anchors"
EXPORT = "eksgate-test-audit-export"
NOW = datetime(2026, 11, 22, 13, 40, 29, tzinfo=UTC)


@pytest.fixture()
def s3(aws):
    client = aws.client("s3")
    create_audit_buckets(client, EXPORT, ANCHORS, days=1)
    return client


def _insert(record):
    serializer = TypeSerializer()
    return {
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "Keys": {
                "session_id": serializer.serialize(record.session_id),
                "seq": serializer.serialize(record.seq),
            },
            "NewImage": record_to_item(record),
            "StreamViewType": "NEW_IMAGE",
        },
    }


def test_the_anchor_bucket_locks_every_object_in_compliance_mode(s3):
    config = s3.get_object_lock_configuration(Bucket=ANCHORS)["ObjectLockConfiguration"]
    retention = config["Rule"]["DefaultRetention"]
    assert (retention["Mode"], retention["Days"]) == ("COMPLIANCE", 1)
    records = sealed_chain(SID, 2)
    write_anchors(s3, ANCHORS, [Anchor(SID, 1, records[1].hash)], NOW)
    head = s3.head_object(Bucket=ANCHORS, Key=anchor_key(Anchor(SID, 1, records[1].hash)))
    assert head["ObjectLockMode"] == "COMPLIANCE"


def test_a_locked_anchor_cannot_be_deleted_and_a_delete_marker_hides_nothing(s3):
    records = sealed_chain(SID, 3)
    anchor = Anchor(SID, 2, records[2].hash)
    write_anchors(s3, ANCHORS, [anchor], NOW)
    key = anchor_key(anchor)
    version = s3.list_object_versions(Bucket=ANCHORS, Prefix=key)["Versions"][0]["VersionId"]
    for bypass in (False, True):  # compliance mode: not even with the governance bypass
        with pytest.raises(ClientError) as refused:
            s3.delete_object(
                Bucket=ANCHORS, Key=key, VersionId=version, BypassGovernanceRetention=bypass
            )
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
    s3.delete_object(Bucket=ANCHORS, Key=key)  # only adds a delete marker
    assert [(a.seq, a.hash) for a in list_anchors(s3, ANCHORS, SID)] == [(2, records[2].hash)]
    assert not check_anchors(SID, records[:2], list_anchors(s3, ANCHORS, SID)).ok


def test_a_retried_batch_adds_no_versions_and_a_second_hash_is_a_new_key(s3):
    records = sealed_chain(SID, 2)
    anchor = Anchor(SID, 1, records[1].hash)
    assert write_anchors(s3, ANCHORS, [anchor], NOW) == 1
    assert write_anchors(s3, ANCHORS, [anchor], NOW) == 0
    versions = s3.list_object_versions(Bucket=ANCHORS)["Versions"]
    assert len(versions) == 1
    body = json.loads(s3.get_object(Bucket=ANCHORS, Key=anchor_key(anchor))["Body"].read())
    assert body == {
        "session_id": SID,
        "seq": 1,
        "hash": records[1].hash,
        "anchored_at": NOW.isoformat(),
    }
    # Someone with the function's PutObject right writes a second hash for record 1: it cannot
    # replace the first, only sit beside it, and the check reports the conflict.
    write_anchors(s3, ANCHORS, [Anchor(SID, 1, "f" * 64)], NOW)
    report = check_anchors(SID, records, list_anchors(s3, ANCHORS, SID))
    assert not report.ok and report.problem.code == "anchor_conflict"


def test_the_stream_function_anchors_each_sessions_head_and_exports_the_batch(s3, monkeypatch):
    monkeypatch.setenv("EKSGATE_EXPORT_BUCKET", EXPORT)
    monkeypatch.setenv("EKSGATE_ANCHOR_BUCKET", ANCHORS)
    records = sealed_chain(SID, 4)
    other = sealed_chain("other-session", 1)
    modify = {**_insert(records[1]), "eventName": "MODIFY"}
    event = {"Records": [_insert(records[0]), _insert(other[0]), _insert(records[1]), modify]}
    assert export_stream_event(event, s3) == 3
    assert list_anchors(s3, ANCHORS, SID) == [
        Anchor(SID, 1, records[1].hash, list_anchors(s3, ANCHORS, SID)[0].anchored_at)
    ]
    assert [a.seq for a in list_anchors(s3, ANCHORS, "other-session")] == [0]
    export_stream_event({"Records": [_insert(records[2]), _insert(records[3])]}, s3)
    assert [a.seq for a in list_anchors(s3, ANCHORS, SID)] == [1, 3]
    assert s3.list_objects_v2(Bucket=EXPORT)["KeyCount"] == 2


def test_the_stream_function_refuses_to_run_without_its_buckets(monkeypatch, s3):
    monkeypatch.delenv("EKSGATE_ANCHOR_BUCKET", raising=False)
    with pytest.raises(RuntimeError, match="EKSGATE_ANCHOR_BUCKET"):
        export_stream_event({"Records": []}, s3, bucket=EXPORT)


class _Store:
    def __init__(self, records):
        self._records = records

    def records(self, session_id):
        return list(self._records)


def test_the_auditor_route_returns_the_anchors_with_the_records(s3):
    records = sealed_chain(SID, 3)
    write_anchors(s3, ANCHORS, [Anchor(SID, 2, records[2].hash)], NOW)
    answer = session_response(_Store(records), SID, s3_anchor_reader("us-east-1", ANCHORS))
    assert [(a["seq"], a["hash"]) for a in answer["anchors"]] == [(2, records[2].hash)]
    assert answer["anchors"][0]["anchored_at"]
    # Every record deleted: the anchors still answer, so verify reports the deletion.
    emptied = session_response(_Store([]), SID, s3_anchor_reader("us-east-1", ANCHORS))
    assert emptied["records"] == [] and len(emptied["anchors"]) == 1


def test_the_route_says_null_without_a_bucket_and_fails_closed_when_it_cannot_read(s3):
    records = sealed_chain(SID, 1)
    assert (
        session_response(_Store(records), SID, s3_anchor_reader("us-east-1", ""))["anchors"] is None
    )
    with pytest.raises(ServiceUnavailable) as unavailable:
        session_response(_Store(records), SID, s3_anchor_reader("us-east-1", "no-such-bucket"))
    assert "no-such-bucket" not in unavailable.value.message
