"""Compact audit items (version 2): what is stored, what it costs, and what tampering shows."""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from datetime import timedelta

import pytest

from chalicelib.audit.chain import genesis_hash, seal, verify_chain
from chalicelib.audit.export import records_from_stream
from chalicelib.audit.item_dictionary import ITEM_DICTIONARY_V2
from chalicelib.audit.items import (
    dynamodb_item_size,
    exported_from_item,
    head_from_item,
    record_from_item,
    record_to_item,
    record_to_item_v1,
)
from chalicelib.audit.records import new_event
from tests.audit.helpers import request_event, sealed_chain

SID = "0123456789abcdef0123456789abcdef"
POD = json.dumps(
    {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {"name": "web-0", "namespace": "shop", "labels": {"app": "web"}},
        "spec": {"containers": [{"name": "web", "image": "shop/web:1.42.0"}]},
        "status": {"phase": "Running", "podIP": "10.0.7.7"},
    },
    separators=(",", ":"),
)


def _sealed(**extra) -> object:
    fields = {
        **request_event(SID, **extra),
        "seq": 0,
        "time": "2026-11-22T13:40:29.123Z",
        "expires_at": 1795354829,
    }
    return seal(fields, genesis_hash(SID))


def test_the_dictionary_is_frozen():
    # Every stored version-2 item needs exactly these bytes to be read back.
    assert (
        hashlib.sha256(ITEM_DICTIONARY_V2).hexdigest()
        == "6185ecaaac5e430c18c5d325c61f5d03eebaf2ba3a66d4e2c1029a229ada0041"
    )


def test_an_item_keeps_key_index_keys_and_ttl_top_level_and_packs_the_rest():
    record = _sealed()
    item = record_to_item(record)
    assert set(item) == {
        "session_id",
        "seq",
        "time",
        "subject",
        "cluster",
        "expires_at",
        "v",
        "h",
        "p",
        "z",
    }
    assert item["v"] == {"N": "2"}
    assert item["h"]["B"] == bytes.fromhex(record.hash)
    assert item["p"]["B"] == bytes.fromhex(record.prev_hash)
    assert item["time"] == {"S": "2026-11-22T13:40:29.123Z"}
    assert item["expires_at"] == {"N": "1795354829"}
    assert record_from_item(item) == record


def test_every_value_survives_exactly():
    odd = {
        "unicode": 'Grüße, 名前 \u2028 "quoted" \\ back',
        "float": 0.1 + 0.2,
        "big": 2**62,
        "neg": -3.5e-7,
        "nested": [[], {}, [None, True, False]],
    }
    record = _sealed(detail=odd, latency_ms=12.0, approval_id="apr-1")
    back = record_from_item(record_to_item(record))
    assert back == record
    assert back.detail["float"] == 0.1 + 0.2
    assert verify_chain(SID, [back]).ok


def test_an_ordinary_get_stays_under_one_write_unit_per_record():
    response = _sealed(
        request={"method": "GET", "path": "/api/v1/namespaces/shop/pods/web-0", "verb": "get"},
        response_body={"inline": POD, "size": len(POD)},
    )
    assert dynamodb_item_size(record_to_item(response)) <= 1024
    assert dynamodb_item_size(record_to_item(response)) < dynamodb_item_size(
        record_to_item_v1(response)
    )


def test_item_size_counts_names_and_values_as_dynamodb_does():
    item = {
        "ab": {"S": "héllo"},  # 2 + 6
        "n": {"N": "12345.6700"},  # 1 + ceil(7 digits / 2) + 1
        "b": {"B": b"\x00" * 32},  # 1 + 32
        "t": {"BOOL": True},  # 1 + 1
        "m": {"M": {"k": {"S": "v"}, "l": {"L": [{"NULL": True}]}}},  # 1 + 3 + (1+1+1) + (1+1+3+2)
    }
    assert dynamodb_item_size(item) == 8 + 6 + 33 + 2 + 14


def test_empty_index_keys_are_left_out_of_a_v2_item():
    record = seal(
        {
            **new_event("refusal", session_id=SID, detail={"why": "unknown cluster"}),
            "seq": 0,
            "time": "2026-11-22T13:40:29.123Z",
            "expires_at": 1,
        },
        genesis_hash(SID),
    )
    item = record_to_item(record)
    assert "subject" not in item and "cluster" not in item
    assert record_from_item(item) == record


def test_a_field_set_directly_on_the_item_is_the_records_and_breaks_its_hash():
    # Whoever can write the table adds a top-level user_agent to a compact item: the record
    # now says what the attacker wrote, and the chain shows it altered.
    records = sealed_chain(SID, 3)
    items = [record_to_item(r) for r in records]
    items[1]["user_agent"] = {"S": "nothing to see"}
    back = [record_from_item(i) for i in items]
    assert back[1].user_agent == "nothing to see"
    report = verify_chain(SID, back)
    assert not report.ok and report.first_problem.code == "altered"


def test_a_repacked_field_breaks_the_hash():
    records = sealed_chain(SID, 2)
    item = record_to_item(records[1])
    packer = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, ITEM_DICTIONARY_V2)
    fields = json.loads(
        zlib.decompressobj(-15, zdict=ITEM_DICTIONARY_V2).decompress(item["z"]["B"])
    )
    fields["decision"]["effect"] = "deny"
    item["z"] = {"B": packer.compress(json.dumps(fields).encode()) + packer.flush()}
    report = verify_chain(SID, [records[0], record_from_item(item)])
    assert not report.ok and report.first_problem.code == "altered"


def test_a_changed_stored_hash_breaks_the_chain():
    records = sealed_chain(SID, 3)
    items = [record_to_item(r) for r in records]
    items[1]["h"] = {"B": b"\x11" * 32}
    report = verify_chain(SID, [record_from_item(i) for i in items])
    assert not report.ok and report.first_problem.seq == 1


@pytest.mark.parametrize(
    "change",
    [
        {"v": {"N": "3"}},
        {"z": {"B": b"not deflate at all"}},
        {"z": {"S": "text"}},
        {"z": {"B": zlib.compress(b"[1, 2]")[2:-4]}},
    ],
)
def test_an_item_eksgate_did_not_write_is_refused_not_guessed(change):
    item = {**record_to_item(sealed_chain(SID, 1)[0]), **change}
    with pytest.raises((ValueError, TypeError)):
        record_from_item(item)


def test_a_packed_field_cannot_inflate_without_bound():
    packer = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, ITEM_DICTIONARY_V2)
    bomb = packer.compress(b'{"detail":"' + b"a" * (1 << 20) + b'"}') + packer.flush()
    item = {**record_to_item(sealed_chain(SID, 1)[0]), "z": {"B": bomb}}
    with pytest.raises(ValueError, match="too large"):
        record_from_item(item)


def test_the_chain_head_reads_from_either_version():
    record = sealed_chain(SID, 1)[0]
    for item in (record_to_item(record), record_to_item_v1(record)):
        projected = {k: v for k, v in item.items() if k in ("seq", "hash", "h")}
        assert head_from_item(projected) == (0, record.hash)


def test_the_export_writes_a_compact_item_as_the_record_it_holds():
    record = sealed_chain(SID, 1)[0]
    assert exported_from_item(record_to_item(record)) == record.to_json_dict()
    assert exported_from_item(record_to_item_v1(record)) == record.to_json_dict()


def test_the_export_reads_binary_values_as_a_lambda_stream_event_spells_them():
    # A stream event reaches Lambda as JSON: binary attribute values are base64 text.
    records = sealed_chain(SID, 2)
    images = []
    for record in records:
        item = record_to_item(record)
        images.append(
            {
                name: {"B": base64.b64encode(value["B"]).decode()} if "B" in value else value
                for name, value in item.items()
            }
        )
    event = {
        "Records": [
            {"eventName": "INSERT", "dynamodb": {"Keys": {}, "NewImage": image}} for image in images
        ]
    }
    exported = records_from_stream(event)
    assert exported == [r.to_json_dict() for r in records]
    json.dumps(exported)  # JSON Lines need plain values


def test_an_unreadable_compact_item_is_still_exported_verbatim():
    item = {**record_to_item(sealed_chain(SID, 1)[0]), "z": {"B": b"garbage"}}
    event = {"Records": [{"eventName": "INSERT", "dynamodb": {"Keys": {}, "NewImage": item}}]}
    (exported,) = records_from_stream(event)
    assert "unreadable_item" in exported
    assert exported["unreadable_item"]["z"]["B"] == base64.b64encode(b"garbage").decode()
    json.dumps(exported)


def test_a_session_begun_in_version_1_items_goes_on_in_version_2(dynamodb, clock):
    # Records stored before this version stay where they are; a new Lambda reads the chain's
    # head from the old item and chains the next record onto it.
    from chalicelib.audit.store import DynamoAuditStore
    from tests.audit.conftest import AUDIT_TABLE

    old = sealed_chain(SID, 2)
    for record in old:
        dynamodb.put_item(TableName=AUDIT_TABLE, Item=record_to_item_v1(record))
    store = DynamoAuditStore(dynamodb, AUDIT_TABLE, clock=clock, sleep=lambda _: None)
    new = store.append(request_event(SID, name="after-upgrade"))
    assert new.seq == 2 and new.prev_hash == old[-1].hash
    stored = dynamodb.get_item(
        TableName=AUDIT_TABLE, Key={"session_id": {"S": SID}, "seq": {"N": "2"}}
    )["Item"]
    assert stored["v"] == {"N": "2"}
    records = store.records(SID)
    assert records == [*old, new]
    assert verify_chain(SID, records).ok
    # Both forms are listed, and the decision filter reads the packed decision.
    listed = store.sessions(subject=old[0].subject, decision="allow")
    assert [(s.session_id, s.records) for s in listed] == [(SID, 3)]
    assert store.sessions(subject=old[0].subject, decision="deny") == []


def test_a_search_of_stored_items_must_unpack_them_to_see_what_they_hold():
    # Why the leak scans (tests/e2e/conftest.py) unpack compact items: the packed bytes do
    # not show a value, even base64-encoded as a stream or a scan prints them.
    planted = "hunter2-planted-value"
    record = _sealed(detail={"note": planted})
    item = record_to_item(record)
    raw = json.dumps(item, default=lambda b: base64.b64encode(b).decode())
    assert planted not in raw
    assert planted in json.dumps(exported_from_item(item))


def test_responses_stay_out_of_the_indexes_yet_listings_count_them(store, dynamodb):
    # Each index copy is a write unit: the indexes find a session by its request, and the
    # listing counts the session's records from the table.
    from tests.audit.conftest import AUDIT_TABLE

    subject = "repo:shop/app:ref:refs/heads/main"
    store.append(request_event(SID, subject=subject, cluster="prod"))
    response = new_event(
        "response",
        session_id=SID,
        subject=subject,
        cluster="prod",
        upstream_status=200,
        response_body={"inline": POD, "size": len(POD)},
    )
    store.append(response)
    stored = dynamodb.get_item(
        TableName=AUDIT_TABLE, Key={"session_id": {"S": SID}, "seq": {"N": "1"}}
    )["Item"]
    assert "subject" not in stored and "cluster" not in stored
    for index, key, value in (
        ("by-subject", "subject", subject),
        ("by-cluster", "cluster", "prod"),
    ):
        copied = dynamodb.query(
            TableName=AUDIT_TABLE,
            IndexName=index,
            KeyConditionExpression="#k = :v",
            ExpressionAttributeNames={"#k": key},
            ExpressionAttributeValues={":v": {"S": value}},
        )["Items"]
        assert [int(i["seq"]["N"]) for i in copied] == [0]
    records = store.records(SID)
    assert [(r.kind, r.subject, r.cluster) for r in records] == [
        ("request", subject, "prod"),
        ("response", subject, "prod"),
    ]
    assert verify_chain(SID, records).ok
    (listed,) = store.sessions(subject=subject)
    assert (listed.records, listed.decisions, listed.last_time) == (
        2,
        {"allow": 1},
        records[1].time,
    )
    assert [s.records for s in store.sessions(cluster="prod", decision="allow")] == [1]
    assert store.sessions(subject=subject, cluster="staging") == []
    # Only the response is in range: its request, just before, still finds the session.
    (after,) = store.sessions(subject=subject, since=records[1].time)
    assert (after.records, after.first_time, after.decisions) == (1, records[1].time, {})


def test_a_response_moved_into_an_index_by_hand_is_an_altered_record(store, dynamodb):
    from tests.audit.conftest import AUDIT_TABLE

    store.append(request_event(SID, cluster="prod"))
    store.append(new_event("response", session_id=SID, cluster="prod", upstream_status=200))
    dynamodb.update_item(
        TableName=AUDIT_TABLE,
        Key={"session_id": {"S": SID}, "seq": {"N": "1"}},
        UpdateExpression="SET #c = :c",
        ExpressionAttributeNames={"#c": "cluster"},
        ExpressionAttributeValues={":c": {"S": "staging"}},
    )
    report = verify_chain(SID, store.records(SID))
    assert not report.ok and report.first_problem.code == "altered"


def test_a_session_read_further_back_is_not_listed_without_a_record_in_range(store):
    from chalicelib.audit.timestamps import format_time, parse_time

    subject = "repo:shop/app:ref:refs/heads/main"
    (request,) = [store.append(request_event(SID, subject=subject))]
    just_after = format_time(parse_time(request.time) + timedelta(milliseconds=1))
    assert store.sessions(subject=subject, since=just_after) == []
    assert [s.records for s in store.sessions(subject=subject, since=request.time)] == [1]
