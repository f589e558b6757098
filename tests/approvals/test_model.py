"""Approvals survive the trip through DynamoDB, and the public view hides the internals."""

from __future__ import annotations

from chalicelib.approvals.items import approval_from_item, approval_to_item
from chalicelib.approvals.model import is_approval_id, new_approval_id
from tests.approvals.conftest import sample_approval


def test_an_approval_round_trips_through_its_item() -> None:
    decision = {
        "user_id": "U0BOB",
        "user_name": "bob",
        "email": "bob@example.com",
        "decision": "approve",
        "reason": "",
        "time": 1714565000,
    }
    approval = sample_approval(
        status="approved",
        decisions=(decision,),
        decided_at=1714565000,
        window_ends_at=1714568600,
        slack_channel="C0APPROVALS",
        slack_ts="1714564000.000100",
    )
    assert approval_from_item(approval_to_item(approval)) == approval


def test_the_item_is_keyed_for_every_index() -> None:
    item = approval_to_item(sample_approval())
    assert item["requester"] == {"S": "user-alice"}
    assert item["status"] == {"S": "pending"} and item["match_key"]["S"].startswith("once:")
    assert "S" in item["created_at"] and item["expires_at"] == {"N": "1714565700"}
    assert "slack_ts" not in item and "window_ends_at" not in item


def test_the_public_view_leaves_out_internal_fields() -> None:
    public = sample_approval(slack_channel="C0APPROVALS", slack_ts="1.2").to_public_dict()
    for internal in ("fingerprint", "match_key", "slack_channel", "slack_ts"):
        assert internal not in public
    assert public["status"] == "pending" and public["notified"] is True
    assert public["requester"]["email"] == "alice@example.com"
    assert public["expires_at"] == "2024-05-01T12:15:00.000000Z"


def test_approval_ids_are_short_random_hex() -> None:
    ids = {new_approval_id() for _ in range(100)}
    assert len(ids) == 100 and all(is_approval_id(i) for i in ids)
    assert not is_approval_id("../../etc") and not is_approval_id(None)
