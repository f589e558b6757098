"""Who may decide: the rule's approvers, once each, never the requester, only while pending."""

from __future__ import annotations

from chalicelib.approvals.authorization import refusal_for
from chalicelib.approvals.model import SlackUser
from tests.approvals.conftest import sample_approval

NOW = 1714565000
BOB = SlackUser("U0BOB", "bob", "bob@example.com")
ALICE = SlackUser("U0ALICE", "alice", "Alice@Example.com")
MALLORY = SlackUser("U0MALLORY", "mallory", "mallory@example.com")
GROUPS = {"platform-oncall": frozenset({"U0BOB", "U0CAROL"})}


def members(handle: str) -> frozenset[str]:
    return GROUPS.get(handle, frozenset())


def test_a_group_member_may_decide_a_pending_request() -> None:
    assert refusal_for(sample_approval(), BOB, members, NOW) is None


def test_a_listed_user_id_may_decide() -> None:
    approval = sample_approval(approvers=("U0MALLORY",))
    assert refusal_for(approval, MALLORY, members, NOW) is None


def test_someone_else_is_told_who_the_approvers_are() -> None:
    refusal = refusal_for(
        sample_approval(approvers=("slack-group:platform-oncall", "U0DAVE")), MALLORY, members, NOW
    )
    assert refusal is not None and "not one of the approvers" in refusal
    assert "@platform-oncall" in refusal and "<@U0DAVE>" in refusal


def test_the_requester_cannot_decide_even_as_an_approver() -> None:
    approval = sample_approval(approvers=("U0ALICE", "U0BOB"))
    refusal = refusal_for(approval, ALICE, members, NOW)
    assert refusal is not None and "You made this request (as alice@example.com)" in refusal


def test_a_clicker_whose_email_slack_hides_cannot_be_told_from_the_requester() -> None:
    hidden = SlackUser("U0BOB", "bob", None)
    refusal = refusal_for(sample_approval(), hidden, members, NOW)
    assert refusal is not None and "users:read.email" in refusal


def test_a_person_without_a_verified_email_cannot_be_told_apart_so_no_one_decides() -> None:
    # The attack: an engineer whose token carries no email approves their own request.
    approval = sample_approval(
        requester={"subject": "user-eve", "issuer": "idp", "email": None, "kind": "person"}
    )
    for clicker in (BOB, SlackUser("U0EVE", "eve", "eve@example.com")):
        refusal = refusal_for(approval, clicker, members, NOW)
        assert refusal is not None and "no verified email" in refusal


def test_an_approval_stored_without_a_requester_kind_is_a_persons() -> None:
    approval = sample_approval(requester={"subject": "user-eve", "issuer": "idp", "email": None})
    assert refusal_for(approval, BOB, members, NOW) is not None


def test_a_workload_requester_relies_on_the_approver_list_alone() -> None:
    approval = sample_approval(
        requester={"subject": "repo:acme/shop", "issuer": "gh", "email": None, "kind": "workload"}
    )
    assert refusal_for(approval, SlackUser("U0BOB", "bob", None), members, NOW) is None
    assert refusal_for(approval, MALLORY, members, NOW) is not None  # still only approvers


def test_an_unverified_email_neither_blocks_nor_lets_anyone_through() -> None:
    carol = SlackUser("U0CAROL", "carol", "carol@example.com")
    # The requester's token claims Carol's address without verification: Carol may still
    # decide (the claim blocks nothing) ...
    claims_carol = sample_approval(
        requester={
            "subject": "user-alice",
            "issuer": "idp",
            "email": "alice@example.com",
            "claimed_email": "carol@example.com",
            "kind": "person",
        }
    )
    assert refusal_for(claims_carol, carol, members, NOW) is None
    # ... and a person whose only email is unverified is not told apart from anyone.
    only_claimed = sample_approval(
        requester={
            "subject": "user-alice",
            "issuer": "idp",
            "email": None,
            "claimed_email": "alice@example.com",
            "kind": "person",
        }
    )
    assert refusal_for(only_claimed, carol, members, NOW) is not None


def test_two_slack_accounts_of_one_person_are_one_approver() -> None:
    bob_again = SlackUser("U0BOB2", "bob-alt", "BOB@example.com ")
    approval = sample_approval(
        min_approvers=2,
        approvers=("U0BOB", "U0BOB2"),
        decisions=(
            {
                "user_id": "U0BOB",
                "user_name": "bob",
                "email": "bob@example.com",
                "decision": "approve",
                "time": NOW - 5,
            },
        ),
    )
    refusal = refusal_for(approval, bob_again, members, NOW)
    assert refusal is not None and "another Slack account" in refusal


def test_a_two_person_rule_needs_to_see_approvers_emails() -> None:
    approval = sample_approval(
        min_approvers=2,
        requester={"subject": "repo:acme/shop", "issuer": "gh", "email": None, "kind": "workload"},
    )
    refusal = refusal_for(approval, SlackUser("U0BOB", "bob", None), members, NOW)
    assert refusal is not None and "users:read.email" in refusal


def test_a_second_decision_by_the_same_person_is_refused() -> None:
    approval = sample_approval(
        min_approvers=2, decisions=({"user_id": "U0BOB", "decision": "approve", "time": NOW - 5},)
    )
    refusal = refusal_for(approval, BOB, members, NOW)
    assert refusal is not None and "You already approved" in refusal and "2 different" in refusal


def test_settled_and_expired_requests_say_so() -> None:
    decided = ({"user_id": "U0CAROL", "decision": "approve", "time": NOW - 5},)
    approved = refusal_for(sample_approval(status="approved", decisions=decided), BOB, members, NOW)
    assert approved == "This request was already approved by <@U0CAROL>."
    assert "already denied" in str(refusal_for(sample_approval(status="denied"), BOB, members, NOW))
    expired = refusal_for(sample_approval(expires_at=NOW), BOB, members, NOW)
    assert expired is not None and expired.startswith("This request expired at")
    assert "expired" in str(refusal_for(sample_approval(status="expired"), BOB, members, NOW))


def test_approver_entries_of_unknown_form_match_nobody() -> None:
    approval = sample_approval(approvers=("bob@example.com", "@platform-oncall", "*"))
    assert refusal_for(approval, BOB, members, NOW) is not None


def test_deactivated_members_and_bots_cannot_decide() -> None:
    gone = SlackUser("U0BOB", "bob", "bob@example.com", deleted=True)
    assert refusal_for(sample_approval(), gone, members, NOW) is not None
