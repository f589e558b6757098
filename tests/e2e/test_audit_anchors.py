"""The audit trail's outside anchor, end to end: records written by real requests, anchored
from the table's stream into the Object Lock bucket, then tampered with directly in DynamoDB
(as someone holding the table's PutItem/DeleteItem rights could). `eksgate sessions verify`
must fail on both a deleted tail and a rewritten suffix, with no flags."""

from __future__ import annotations

import time

import jwt
import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chalicelib.audit.chain import seal
from chalicelib.audit.items import record_to_item
from chalicelib.audit.records import record_from_json
from tests.e2e.test_audit import api_client, eksgate, session_records

pytestmark = pytest.mark.e2e
TABLE = "eksgate-local-audit"
ANCHOR_BUCKET = "eksgate-local-audit-anchors"


def _recorded_session(stack) -> str:
    token = stack.session_token("ci-agent")
    session_id = jwt.decode(token, options={"verify_signature": False})["sid"]
    api = client.CoreV1Api(api_client(stack, token))
    api.list_namespaced_pod("shop")
    api.read_namespaced_secret("db-credentials", "shop")
    with pytest.raises(ApiException):
        api.delete_namespace("shop")
    api.list_namespaced_pod("shop")
    return session_id


def _anchored_session(stack, session_id: str) -> dict:
    """The session once its newest record is anchored (the stream is polled every 0.5 s)."""
    for _ in range(120):  # a bound on waiting, not a speed assertion
        status, answer = session_records(stack, session_id)
        assert status == 200, answer
        anchored = [a["seq"] for a in answer["anchors"]]
        if answer["records"] and anchored and max(anchored) == answer["records"][-1]["seq"]:
            return answer
        time.sleep(0.5)
    raise AssertionError(f"session {session_id} was never anchored: {answer['anchors']}")


def test_anchors_are_locked_objects_in_the_stage_bucket(stack):
    session_id = _recorded_session(stack)
    answer = _anchored_session(stack, session_id)
    s3 = stack.aws("s3")
    newest = answer["anchors"][-1]
    key = f"anchors/{session_id}/{newest['seq']:012d}-{newest['hash']}"
    assert s3.head_object(Bucket=ANCHOR_BUCKET, Key=key)["ObjectLockMode"] == "COMPLIANCE"
    verify = eksgate(stack, "sessions", "verify", session_id)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "chain intact" in verify.stdout and "every record is anchored" in verify.stdout


def test_verify_finds_a_deleted_tail_without_flags(stack):
    session_id = _recorded_session(stack)
    records = _anchored_session(stack, session_id)["records"]
    last = records[-1]["seq"]
    dynamodb = stack.aws("dynamodb")
    for seq in (last, last - 1):
        dynamodb.delete_item(
            TableName=TABLE, Key={"session_id": {"S": session_id}, "seq": {"N": str(seq)}}
        )
    verify = eksgate(stack, "sessions", "verify", session_id)
    assert verify.returncode == 1, verify.stdout + verify.stderr
    assert "chain intact" in verify.stdout  # what remains is a valid chain: only the anchor sees
    assert (
        f"TAMPERED: record {last} was anchored but the table has records up to {last - 2}: "
        f"records {last - 1} to {last} were deleted"
    ) in verify.stdout


def test_verify_finds_a_rewritten_suffix_without_flags(stack):
    session_id = _recorded_session(stack)
    records = [record_from_json(r) for r in _anchored_session(stack, session_id)["records"]]
    # Rewrite from record 1 on and re-hash every later record, so the chain alone verifies:
    # the Secret read "never happened".
    dynamodb = stack.aws("dynamodb")
    prev = records[0].hash
    for record in records[1:]:
        fields = dict(record.sealed_fields())
        fields.pop("prev_hash")
        if record.seq == 1:
            fields["upstream_status"] = 404
        forged = seal(fields, prev)
        dynamodb.put_item(TableName=TABLE, Item=record_to_item(forged))
        prev = forged.hash
    verify = eksgate(stack, "sessions", "verify", session_id)
    assert verify.returncode == 1, verify.stdout + verify.stderr
    assert "chain intact" in verify.stdout
    assert (
        "does not match its anchor: the session was rewritten at or before record" in verify.stdout
    )
    # The overwrites reached the stream as MODIFY events, which anchor nothing: the anchors
    # still say what was first written.
    answer = _anchored_session_unchanged(stack, session_id)
    assert answer["anchors"][-1]["hash"] == records[-1].hash


def _anchored_session_unchanged(stack, session_id):
    status, answer = session_records(stack, session_id)
    assert status == 200
    return answer
