"""Audit values: events, DynamoDB items, JSON, and what bodies a record keeps."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import pytest
from boto3.dynamodb.types import TypeSerializer

from chalicelib.audit.bodies import summarize_body
from chalicelib.audit.chain import verify_chain
from chalicelib.audit.items import record_from_item, record_to_item, record_to_item_v1
from chalicelib.audit.records import (
    decision_dict,
    identity_dict,
    new_event,
    record_from_json,
    request_dict,
)
from chalicelib.audit.timestamps import format_time, normalize_time, parse_time
from chalicelib.identity import Identity
from chalicelib.kube.request import KubeRequest
from chalicelib.policy.engine import Decision
from tests.audit.helpers import sealed_chain

SID = "0123456789abcdef0123456789abcdef"


def test_a_record_survives_dynamodb_items_with_its_hash_intact():
    records = sealed_chain(SID, 3)
    back = [record_from_item(record_to_item(r)) for r in records]
    assert back == records
    assert verify_chain(SID, back).ok


def test_records_stored_before_version_2_still_read_and_verify():
    records = sealed_chain(SID, 3)
    item = record_to_item_v1(records[1])
    assert item["latency_ms"] == {"N": "12.5"}
    assert item["request"]["M"]["verb"] == {"S": "get"}
    back = [record_from_item(record_to_item_v1(r)) for r in records]
    assert back == records
    assert verify_chain(SID, back).ok


def test_dynamodb_normalized_numbers_still_verify():
    # DynamoDB drops trailing zeros: 12.0 is stored as 12 and comes back as an int.
    from chalicelib.audit.chain import genesis_hash, seal
    from tests.audit.helpers import request_event

    fields = {
        **request_event(SID, latency_ms=12.0),
        "seq": 0,
        "time": "2026-11-22T13:40:29.123Z",
        "expires_at": 1,
    }
    record = seal(fields, genesis_hash(SID))
    item = record_to_item_v1(record)
    item["latency_ms"] = {"N": "12"}
    assert verify_chain(SID, [record_from_item(item)]).ok


def test_empty_index_keys_are_left_out_of_the_item():
    from chalicelib.audit.chain import genesis_hash, seal

    fields = {
        **new_event("refusal", session_id=SID, detail={"why": "unknown cluster"}),
        "seq": 0,
        "time": "2026-11-22T13:40:29.123Z",
        "expires_at": 1,
    }
    record = seal(fields, genesis_hash(SID))
    item = record_to_item(record)
    assert "subject" not in item and "cluster" not in item
    assert record_from_item(item) == record


def test_json_form_round_trips_and_is_a_copy():
    record = sealed_chain(SID, 1)[0]
    data = record.to_json_dict()
    data["identity"]["groups"].append("admins")
    assert record.identity["groups"] == ["ci"]
    assert record_from_json(record.to_json_dict()) == record


def test_json_records_with_missing_or_mistyped_fields_are_refused():
    data = sealed_chain(SID, 1)[0].to_json_dict()
    with pytest.raises(ValueError, match="lacks hash"):
        record_from_json({k: v for k, v in data.items() if k != "hash"})
    with pytest.raises(ValueError, match="wrong type: seq"):
        record_from_json({**data, "seq": "0"})


def test_new_event_fills_defaults_and_refuses_what_it_cannot_hash():
    event = new_event("approval_expired", session_id=SID, approval_id="a1b2c3d4e5")
    assert event["kind"] == "approval_expired" and event["detail"] == {}
    assert event["request"] is None and "seq" not in event
    with pytest.raises(ValueError, match="unknown audit event kind"):
        new_event("coffee", session_id=SID)
    with pytest.raises(TypeError, match="unknown audit event fields: colour"):
        new_event("request", session_id=SID, colour="red")
    with pytest.raises(TypeError, match="set is not a JSON value"):
        new_event("request", session_id=SID, detail={"x": {1, 2}})
    with pytest.raises(ValueError, match="NaN"):
        new_event("request", session_id=SID, latency_ms=float("nan"))
    with pytest.raises(ValueError, match="session_id"):
        new_event("request", session_id="")


def test_domain_values_become_record_fields():
    identity = Identity("sub-1", "https://issuer", "a@example.com", ("devs",), {"sub": "sub-1"})
    assert identity_dict(identity, {"repository": "shop/app"}) == {
        "subject": "sub-1",
        "issuer": "https://issuer",
        "email": "a@example.com",
        "groups": ["devs"],
        "matched_claims": {"repository": "shop/app"},
    }
    request = KubeRequest(
        verb="get",
        path="/apis/apps/v1/namespaces/shop/deployments/web",
        api_prefix="apis",
        api_group="apps",
        api_version="v1",
        namespace="shop",
        resource="deployments",
        name="web",
    )
    assert request_dict(request, "GET", "pretty=true")["api_group"] == "apps"
    assert decision_dict(Decision("deny", "ci-agent", None, "no rule")) == {
        "effect": "deny",
        "policy": "ci-agent",
        "rule": "(no rule matched)",
        "reason": "no rule",
    }


def test_small_bodies_are_kept_inline_and_large_ones_as_size_and_hash():
    assert summarize_body(None) is None
    assert summarize_body("") is None and summarize_body(b"") is None
    assert summarize_body('{"a":1}') == {"inline": '{"a":1}', "size": 7}
    assert summarize_body("é" * 3, limit=6) == {"inline": "ééé", "size": 6}
    big = "x" * 5000
    assert summarize_body(big) == {
        "size": 5000,
        "sha256": hashlib.sha256(big.encode()).hexdigest(),
        "omitted": True,
    }
    assert summarize_body("é" * 3, limit=5)["omitted"] is True  # the limit is in bytes


def test_binary_bodies_are_always_summarized():
    raw = b"\xff\xfe\x00binary"
    assert summarize_body(raw) == {
        "size": len(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "omitted": True,
    }
    assert summarize_body(b"plain") == {"inline": "plain", "size": 5}


def test_times_are_fixed_width_utc_with_milliseconds():
    moment = parse_time("2026-11-22T14:40:29.123456+01:00")
    assert format_time(moment) == "2026-11-22T13:40:29.123Z"
    assert normalize_time("2026-11-22T13:40:29Z") == "2026-11-22T13:40:29.000Z"
    for bad in ("yesterday", "2026-11-22", "2026-11-22 13:40:29Z", "2026-13-22T13:40:29Z"):
        with pytest.raises(ValueError):
            parse_time(bad)


def test_serializer_would_refuse_floats_so_items_carry_decimals():
    with pytest.raises(TypeError):
        TypeSerializer().serialize(1.5)
    assert record_to_item_v1(sealed_chain(SID, 1)[0])["latency_ms"]["N"] == str(Decimal("12.5"))
