"""The hash chain: sealing, and detecting every kind of tampering it can detect."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from chalicelib.audit.chain import (
    canonical_json,
    compute_hash,
    genesis_hash,
    seal,
    verify_chain,
)
from chalicelib.audit.records import RECORD_FIELDS
from tests.audit.helpers import sealed_chain

SID = "5f0c1d2e3a4b5c6d7e8f90a1b2c3d4e5"


def test_an_untouched_chain_verifies():
    records = sealed_chain(SID, 5)
    report = verify_chain(SID, records)
    assert report.ok and report.checked == 5 and report.first_problem is None


def test_record_zero_chains_from_the_sessions_genesis_hash():
    records = sealed_chain(SID, 2)
    assert records[0].prev_hash == hashlib.sha256(b"eksgate-audit:" + SID.encode()).hexdigest()
    assert records[0].prev_hash == genesis_hash(SID)
    assert records[1].prev_hash == records[0].hash


def test_hash_covers_prev_hash_and_every_field_in_canonical_json():
    record = sealed_chain(SID, 1)[0]
    body = canonical_json(record.sealed_fields())
    assert record.hash == hashlib.sha256(record.prev_hash.encode() + body).hexdigest()
    decoded = json.loads(body)
    assert set(decoded) == set(RECORD_FIELDS) - {"hash"}
    assert (
        body
        == json.dumps(decoded, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    )


def test_canonical_json_spells_numbers_by_value_and_text_as_utf8():
    assert canonical_json({"a": 12.0, "b": 12}) == b'{"a":12,"b":12}'
    assert canonical_json({"name": "caf\u00e9", "hash": "ignored"}) == '{"name":"café"}'.encode()


def test_a_changed_field_is_reported_as_altered():
    records = sealed_chain(SID, 4)
    records[2] = dataclasses.replace(records[2], upstream_status=500)
    report = verify_chain(SID, records)
    assert not report.ok and report.checked == 2
    assert report.first_problem.seq == 2
    assert report.first_problem.message == "record 2 was altered (hash mismatch)"


def test_a_changed_nested_value_is_reported_as_altered():
    records = sealed_chain(SID, 3)
    decision = {**records[1].decision, "effect": "deny"}
    records[1] = dataclasses.replace(records[1], decision=decision)
    assert (
        verify_chain(SID, records).first_problem.message == "record 1 was altered (hash mismatch)"
    )


def test_a_reordered_pair_is_reported_out_of_order():
    records = sealed_chain(SID, 4)
    records[1], records[2] = records[2], records[1]
    problem = verify_chain(SID, records).first_problem
    assert problem.code == "order" and problem.message.startswith("records out of order")


def test_swapped_seq_numbers_are_alterations():
    records = sealed_chain(SID, 3)
    records[0], records[1] = (
        dataclasses.replace(records[1], seq=0),
        dataclasses.replace(records[0], seq=1),
    )
    assert (
        verify_chain(SID, records).first_problem.message == "record 0 was altered (hash mismatch)"
    )


def test_a_deleted_middle_record_is_reported_missing():
    records = sealed_chain(SID, 5)
    del records[2]
    report = verify_chain(SID, records)
    assert report.first_problem.message == "record 2 is missing"
    assert report.checked == 2


def test_a_deleted_last_record_needs_the_expected_count_or_last_hash():
    records = sealed_chain(SID, 5)
    last_hash = records[-1].hash
    del records[-1]
    assert verify_chain(SID, records).ok  # a chain alone cannot know it was longer
    by_count = verify_chain(SID, records, expected_count=5)
    assert not by_count.ok and by_count.first_problem.seq == 4
    assert by_count.first_problem.message.startswith("record 4 is missing")
    by_hash = verify_chain(SID, records, expected_last_hash=last_hash)
    assert not by_hash.ok and by_hash.first_problem.code == "last_hash"


def test_the_expected_anchor_passes_on_an_intact_chain():
    records = sealed_chain(SID, 3)
    assert verify_chain(SID, records, expected_count=3, expected_last_hash=records[-1].hash).ok


def test_a_record_from_another_session_is_reported():
    records = sealed_chain(SID, 3)
    records[1] = sealed_chain("another-session", 2)[1]
    problem = verify_chain(SID, records).first_problem
    assert problem.message.startswith("record 1 belongs to another session")


def test_a_whole_chain_of_another_session_is_refused_from_its_first_record():
    assert verify_chain(SID, sealed_chain("other", 2)).first_problem.code == "session"


def test_a_rehashed_forgery_breaks_the_next_records_link():
    records = sealed_chain(SID, 4)
    forged_fields = {**records[1].sealed_fields(), "upstream_status": 404}
    forged = seal(
        {k: v for k, v in forged_fields.items() if k != "prev_hash"}, records[1].prev_hash
    )
    assert forged.hash != records[1].hash
    records[1] = forged
    problem = verify_chain(SID, records).first_problem
    assert problem.seq == 2
    assert problem.message == "record 2 does not follow record 1 (prev_hash mismatch)"


def test_sealing_refuses_missing_or_unknown_fields():
    fields = sealed_chain(SID, 1)[0].sealed_fields()
    del fields["prev_hash"]
    with pytest.raises(ValueError, match="missing time"):
        seal({k: v for k, v in fields.items() if k != "time"}, "x")
    with pytest.raises(ValueError, match="unknown extra"):
        seal({**fields, "extra": 1}, "x")


# -- property: any single-field change to any record is caught --------------------------

_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=20),
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
_CHAIN = sealed_chain(SID, 4)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    position=st.integers(0, len(_CHAIN) - 1),
    name=st.sampled_from(RECORD_FIELDS),
    value=_json_values,
)
def test_any_single_field_mutation_of_any_record_is_detected(position, name, value):
    original = _CHAIN[position]
    assume(canonical_json({"v": value}) != canonical_json({"v": getattr(original, name)}))
    records = list(_CHAIN)
    records[position] = dataclasses.replace(original, **{name: value})
    report = verify_chain(SID, records)
    assert not report.ok
    assert report.checked <= position


def test_compute_hash_matches_seal():
    record = sealed_chain(SID, 1)[0]
    assert compute_hash(record.sealed_fields()) == record.hash
