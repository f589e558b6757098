"""Anchors and the check of a session against them: pure, no AWS."""

from __future__ import annotations

import dataclasses

import pytest

from chalicelib.audit.anchor_check import check_anchors
from chalicelib.audit.anchors import Anchor, anchor_from_key, anchor_key, heads
from chalicelib.audit.chain import genesis_hash, seal, verify_chain
from tests.audit.helpers import sealed_chain

SID = "5f0c1d2e3a4b5c6d7e8f90a1b2c3d4e5"


def _anchor(records, seq):
    return Anchor(SID, seq, records[seq].hash)


def _rewritten_from(records, start):
    """What someone with PutItem on the table can do: change record ``start`` and re-hash
    every record after it, so the chain alone still verifies."""
    rewritten = list(records[:start])
    prev = records[start - 1].hash if start else genesis_hash(SID)
    for record in records[start:]:
        fields = dict(record.sealed_fields())
        fields.pop("prev_hash")
        if record.seq == start:
            fields["upstream_status"] = 404  # the delete "never happened"
        sealed = seal(fields, prev)
        rewritten.append(sealed)
        prev = sealed.hash
    return rewritten


def test_anchor_keys_round_trip_and_pin_the_hash():
    records = sealed_chain(SID, 2)
    anchor = _anchor(records, 1)
    key = anchor_key(anchor)
    assert key == f"anchors/{SID}/000000000001-{records[1].hash}"
    assert anchor_from_key(SID, key) == anchor


def test_a_session_id_cannot_reach_into_another_sessions_keys():
    # "a/000000000009-<hash>" quoted has no "/", so its keys never sit under session "a".
    digest = "0" * 64
    sneaky = Anchor("a/000000000009-" + digest, 0, digest)
    assert anchor_from_key("a", anchor_key(sneaky)) is None
    assert anchor_from_key(sneaky.session_id, anchor_key(sneaky)) == sneaky


@pytest.mark.parametrize("tail", ["000000000001-xyz", "1-" + "A" * 64, "x", "1-" + "0" * 64 + "/"])
def test_keys_of_any_other_form_are_not_anchors(tail):
    assert anchor_from_key(SID, f"anchors/{SID}/{tail}") is None


def test_heads_keep_the_newest_record_of_each_session_and_skip_foreign_items():
    mine = [r.to_json_dict() for r in sealed_chain(SID, 3)]
    other = [r.to_json_dict() for r in sealed_chain("other", 2)]
    foreign = [
        {"unreadable_item": {}},
        {"session_id": SID, "seq": True, "hash": "0" * 64},
        {"session_id": SID, "seq": 99, "hash": "not-a-hash"},
    ]
    found = heads([mine[2], other[0], mine[0], *foreign, other[1], mine[1]])
    assert found == [Anchor(SID, 2, mine[2]["hash"]), Anchor("other", 1, other[1]["hash"])]


def test_an_intact_fully_anchored_session_passes():
    records = sealed_chain(SID, 5)
    report = check_anchors(SID, records, [_anchor(records, 1), _anchor(records, 4)])
    assert report.ok and report.anchored_through == 4 and report.unanchored == ()
    assert report.anchors == 2


def test_a_deleted_tail_is_found_although_the_chain_verifies():
    records = sealed_chain(SID, 6)
    anchors = [_anchor(records, 2), _anchor(records, 5)]
    remaining = records[:4]
    assert verify_chain(SID, remaining).ok  # the chain alone cannot tell
    report = check_anchors(SID, remaining, anchors)
    assert not report.ok and report.problem.code == "tail_deleted"
    assert report.problem.message == (
        "record 5 was anchored but the table has records up to 3: records 4 to 5 were deleted"
    )


def test_a_session_with_every_record_deleted_is_found():
    records = sealed_chain(SID, 3)
    report = check_anchors(SID, [], [_anchor(records, 2)])
    assert not report.ok and report.problem.code == "tail_deleted"
    assert "the table has no records" in report.problem.message


@pytest.mark.parametrize("start", [0, 2, 4])
def test_a_rewritten_suffix_is_found_although_the_chain_verifies(start):
    records = sealed_chain(SID, 5)
    anchors = [_anchor(records, 1), _anchor(records, 4)]
    rewritten = _rewritten_from(records, start)
    assert verify_chain(SID, rewritten).ok  # re-hashed: the chain alone cannot tell
    report = check_anchors(SID, rewritten, anchors)
    assert not report.ok and report.problem.code == "anchor_mismatch"
    first_bad = 1 if start <= 1 else 4
    assert report.problem.seq == first_bad
    assert f"rewritten at or before record {first_bad}" in report.problem.message


def test_a_rewrite_after_the_newest_anchor_is_reported_as_not_yet_anchored():
    # The window: nothing outside the table vouches for records 4 and 5 yet, and the report
    # says so rather than calling them verified.
    records = sealed_chain(SID, 6)
    rewritten = _rewritten_from(records, 4)
    report = check_anchors(SID, rewritten, [_anchor(records, 3)])
    assert report.ok and report.anchored_through == 3 and report.unanchored == (4, 5)


def test_reordered_records_are_checked_by_seq_and_the_chain_reports_the_order():
    records = sealed_chain(SID, 4)
    reordered = [records[0], records[2], records[1], records[3]]
    assert check_anchors(SID, reordered, [_anchor(records, 3)]).ok
    chain = verify_chain(SID, reordered)
    assert not chain.ok and chain.first_problem.code == "order"


def test_a_swapped_record_under_an_anchor_is_found():
    records = sealed_chain(SID, 4)
    swapped = list(records)
    swapped[2] = dataclasses.replace(records[2], hash=records[1].hash)
    report = check_anchors(SID, swapped, [_anchor(records, 2)])
    assert not report.ok and report.problem.code == "anchor_mismatch"


def test_no_anchors_leaves_every_record_unanchored_never_verified():
    records = sealed_chain(SID, 3)
    report = check_anchors(SID, records, [])
    assert report.ok and report.anchored_through == -1 and report.unanchored == (0, 1, 2)


def test_two_anchors_for_one_record_are_a_conflict():
    records = sealed_chain(SID, 3)
    forged = Anchor(SID, 1, "f" * 64)
    report = check_anchors(SID, records, [_anchor(records, 1), forged, _anchor(records, 2)])
    assert not report.ok and report.problem.code == "anchor_conflict"
    assert report.problem.seq == 1


def test_a_missing_anchored_record_in_the_middle_is_found():
    records = sealed_chain(SID, 4)
    holed = [records[0], records[2], records[3]]
    report = check_anchors(SID, holed, [_anchor(records, 1), _anchor(records, 3)])
    assert not report.ok and report.problem.code == "anchor_missing"


def test_anchors_of_another_session_are_ignored():
    records = sealed_chain(SID, 2)
    report = check_anchors(SID, records, [Anchor("other", 7, "a" * 64), _anchor(records, 1)])
    assert report.ok and report.anchors == 1
