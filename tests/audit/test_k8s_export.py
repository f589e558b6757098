"""The S3 stream export's k8s-audit format: each event once, whichever batch ends it."""

from __future__ import annotations

import json

import pytest
from boto3.dynamodb.types import TypeSerializer

from chalicelib.audit.items import record_to_item
from chalicelib.audit.k8s_events import k8s_audit_events
from chalicelib.routes.audit_export import export_stream_event
from tests.audit.test_export import _stream_entry
from tests.audit.test_k8s_events import VALIDATOR, recorded  # noqa: F401  (fixture)

BUCKET = "audit-bucket"


def _batch(records):
    serializer = TypeSerializer()
    return {
        "Records": [
            _stream_entry(
                "INSERT",
                {
                    "session_id": serializer.serialize(r.session_id),
                    "seq": serializer.serialize(r.seq),
                },
                record_to_item(r),
            )
            for r in records
        ]
    }


def _lines(s3, prefix):
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return [
        json.loads(line)
        for item in listing
        for line in s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read().splitlines()
    ]


@pytest.fixture()
def s3(aws, monkeypatch):
    from eksgate_local.aws import create_audit_buckets

    client = aws.client("s3")
    create_audit_buckets(client, BUCKET, "anchor-bucket", days=1)
    monkeypatch.setenv("EKSGATE_ANCHOR_BUCKET", "anchor-bucket")
    return client


def test_each_event_is_exported_once_when_its_last_record_arrives(recorded, s3, monkeypatch):  # noqa: F811
    monkeypatch.setenv("EKSGATE_EXPORT_FORMAT", "k8s-audit")
    records = recorded.store.records(recorded.session_id)
    # The stream splits a request from its response: the first batch ends mid-request.
    cut = next(i for i, r in enumerate(records) if r.kind == "request") + 1
    for batch in (records[:cut], records[cut:]):
        export_stream_event(
            _batch(batch), s3, bucket=BUCKET, session_records=recorded.store.records
        )
    exported = _lines(s3, "k8s-audit/")
    assert sorted(e["auditID"] for e in exported) == sorted(recorded.audit_ids.values())
    assert exported == [e for e in k8s_audit_events(records) if e in exported]
    for event in exported:
        VALIDATOR.validate(event)
    assert _lines(s3, "audit/") == []  # only the format this stage chose


def test_both_formats_and_a_policy_file(recorded, s3, monkeypatch, tmp_path):  # noqa: F811
    policy = tmp_path / "audit-policy.yaml"
    policy.write_text(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n"
        "  - level: None\n    verbs: [delete]\n  - level: Request\n"
    )
    monkeypatch.setenv("EKSGATE_EXPORT_FORMAT", "both")
    monkeypatch.setenv("EKSGATE_EXPORT_K8S_POLICY", str(policy))
    records = recorded.store.records(recorded.session_id)
    export_stream_event(_batch(records), s3, bucket=BUCKET, session_records=recorded.store.records)
    assert len(_lines(s3, "audit/")) == len(records)
    events = _lines(s3, "k8s-audit/")
    assert {e["level"] for e in events} == {"Request"}
    assert recorded.audit_ids["delete-ns"] not in {e["auditID"] for e in events}


def test_a_format_nobody_chose_fails_the_batch(s3, monkeypatch):
    monkeypatch.setenv("EKSGATE_EXPORT_FORMAT", "cef")
    with pytest.raises(RuntimeError, match="EKSGATE_EXPORT_FORMAT"):
        export_stream_event({"Records": []}, s3, bucket=BUCKET)


def test_a_bad_policy_file_fails_the_batch_rather_than_export_at_a_wrong_level(
    recorded,  # noqa: F811  (the fixture, imported)
    s3,
    monkeypatch,
    tmp_path,
):
    policy = tmp_path / "audit-policy.yaml"
    policy.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: Most}]\n")
    monkeypatch.setenv("EKSGATE_EXPORT_FORMAT", "both")
    monkeypatch.setenv("EKSGATE_EXPORT_K8S_POLICY", str(policy))
    records = recorded.store.records(recorded.session_id)
    with pytest.raises(ValueError, match="level"):
        export_stream_event(
            _batch(records), s3, bucket=BUCKET, session_records=recorded.store.records
        )
    # Nothing written, so Lambda's retry does not write the records twice.
    assert _lines(s3, "k8s-audit/") == [] and _lines(s3, "audit/") == []
