"""Every state change is a conditional write: races give one decision, one use, one expiry."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.approvals.errors import ApprovalsUnavailable
from chalicelib.approvals.model import Approval, Vote, iso_time, new_approval_id
from chalicelib.approvals.store import DynamoApprovalStore
from tests.approvals.conftest import FakeClock, must, sample_approval


def create(store: DynamoApprovalStore, clock: FakeClock, **overrides: Any) -> Approval:
    now = int(clock())
    values: dict[str, Any] = {
        "approval_id": new_approval_id(),
        "created_at": iso_time(now),
        "expires_at": now + 900,
    }
    values.update(overrides)
    return store.create(sample_approval(**values))


def decide(
    store: DynamoApprovalStore,
    approval: Approval,
    user: str,
    decision: str = "approve",
    **kwargs: Any,
) -> Any:
    now = kwargs.pop("now", None)
    vote = Vote(user, user.lower(), f"{user.lower()}@example.com", decision, "", **kwargs)
    return store.record_decision(approval.approval_id, vote, now)


def together(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``n`` threads released at the same moment; re-raise what one raised."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except BaseException as error:  # noqa: BLE001 - handed to the test's thread below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


def test_created_approvals_can_be_read_back(store: DynamoApprovalStore, clock: FakeClock) -> None:
    approval = create(store, clock)
    assert must(store.get(approval.approval_id)) == approval
    assert store.get("ffffffffffffffffffff") is None
    with pytest.raises(ApprovalsUnavailable, match="already exists"):
        store.create(approval)


def test_find_pending_ignores_expired_and_settled_approvals(
    store: DynamoApprovalStore, clock: FakeClock
) -> None:
    key = "once:k1"
    create(store, clock, match_key=key, expires_at=int(clock()) - 1)
    create(store, clock, match_key=key, status="denied")
    assert store.find_pending(key) is None
    live = create(store, clock, match_key=key)
    assert store.find_pending(key) == live


def test_one_approver_settles_a_single_approver_rule(
    store: DynamoApprovalStore, clock: FakeClock
) -> None:
    approval = create(store, clock)
    outcome = decide(store, approval, "U0BOB")
    assert outcome.outcome == "approved" and outcome.changed
    assert must(outcome.approval).status == "approved"
    assert must(outcome.approval).decided_at == int(clock())
    assert must(outcome.approval).expires_at == int(clock()) + approval.ttl_seconds
    assert decide(store, approval, "U0CAROL").outcome == "not_pending"
    assert decide(store, approval, "U0BOB").outcome == "not_pending"
    assert len(must(store.get(approval.approval_id)).decisions) == 1


def test_two_person_rule_needs_two_different_people(
    store: DynamoApprovalStore, clock: FakeClock
) -> None:
    approval = create(store, clock, min_approvers=2)
    first = decide(store, approval, "U0BOB")
    assert (first.outcome, must(first.approval).status) == ("recorded", "pending")
    again = decide(store, approval, "U0BOB")
    assert (again.outcome, again.changed) == ("already_decided", False)
    second = decide(store, approval, "U0CAROL")
    assert (second.outcome, must(second.approval).status) == ("approved", "approved")
    assert [d["user_id"] for d in must(second.approval).decisions] == ["U0BOB", "U0CAROL"]


def test_a_deny_settles_at_once_and_keeps_its_reason(
    store: DynamoApprovalStore, clock: FakeClock
) -> None:
    approval = create(store, clock, min_approvers=2)
    decide(store, approval, "U0BOB")
    outcome = store.record_decision(
        approval.approval_id, Vote("U0CAROL", "carol", None, "deny", "not during the freeze")
    )
    assert (outcome.outcome, must(outcome.approval).status) == ("denied", "denied")
    assert must(outcome.approval).decisions[-1]["reason"] == "not during the freeze"
    assert decide(store, approval, "U0DAVE").outcome == "not_pending"


def test_decisions_after_the_deadline_are_refused(
    store: DynamoApprovalStore, clock: FakeClock
) -> None:
    approval = create(store, clock, expires_at=int(clock()) + 10)
    clock.advance(10)
    assert decide(store, approval, "U0BOB").outcome == "expired"
    assert must(store.get(approval.approval_id)).status == "pending"
    assert decide(store, sample_approval(approval_id="f" * 20), "U0BOB").outcome == "not_found"


def test_the_same_delivery_is_recorded_once(store: DynamoApprovalStore, clock: FakeClock) -> None:
    approval = create(store, clock, min_approvers=2)
    assert decide(store, approval, "U0BOB", interaction_key="k1").outcome == "recorded"
    assert decide(store, approval, "U0BOB", interaction_key="k1").outcome == "duplicate"
    assert store.claim_interaction(approval.approval_id, "k1") is False
    assert store.claim_interaction(approval.approval_id, "k2") is True
    assert store.claim_interaction(approval.approval_id, "k2") is False
    assert store.claim_interaction("f" * 20, "k3") is False


def test_approving_a_grant_opens_its_window(store: DynamoApprovalStore, clock: FakeClock) -> None:
    approval = create(store, clock, mode="grant", match_key="grant:g1", window_seconds=1800)
    assert store.active_grant("grant:g1") is None
    decide(store, approval, "U0BOB")
    granted = store.active_grant("grant:g1")
    assert granted is not None and granted.window_ends_at == int(clock()) + 1800
    assert granted.expires_at == granted.window_ends_at  # TTL keeps it while it is usable
    clock.advance(1799)
    assert store.active_grant("grant:g1") is not None
    clock.advance(1)
    assert store.active_grant("grant:g1") is None


def test_a_once_approval_is_consumed_by_exactly_one_of_two_racing_requests(
    store: DynamoApprovalStore, clock: FakeClock
) -> None:
    approval = create(store, clock, match_key="once:race")
    assert store.consume_once("once:race") is None  # not approved yet
    decide(store, approval, "U0BOB")
    results = together(2, lambda _: store.consume_once("once:race"))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and winners[0].status == "used"
    assert winners[0].used_at == int(clock())
    assert store.consume_once("once:race") is None
    assert must(store.get(approval.approval_id)).status == "used"


def test_an_approved_once_approval_is_only_usable_until_it_expires(
    store: DynamoApprovalStore, clock: FakeClock
) -> None:
    approval = create(store, clock, match_key="once:late", ttl_seconds=60)
    decide(store, approval, "U0BOB")
    clock.advance(60)
    assert store.consume_once("once:late") is None
    assert store.consume(approval.approval_id, "once:late") is None


def test_consume_by_id_checks_the_match_key(store: DynamoApprovalStore, clock: FakeClock) -> None:
    approval = create(store, clock, match_key="once:mine")
    decide(store, approval, "U0BOB")
    assert store.consume(approval.approval_id, "once:someone-else") is None
    assert must(store.consume(approval.approval_id, "once:mine")).status == "used"


def test_thirty_simultaneous_approvers_make_one_decision_and_one_status_change(
    store: DynamoApprovalStore, clock: FakeClock
) -> None:
    approval = create(store, clock)
    results = together(30, lambda i: decide(store, approval, f"U0APPROVER{i:02d}"))
    outcomes = Counter(r.outcome for r in results)
    assert outcomes == Counter({"approved": 1, "not_pending": 29})
    stored = must(store.get(approval.approval_id))
    assert stored.status == "approved" and len(stored.decisions) == 1


def test_a_three_person_rule_under_a_crowd_records_exactly_three(
    store: DynamoApprovalStore, clock: FakeClock
) -> None:
    approval = create(store, clock, min_approvers=3)
    results = together(12, lambda i: decide(store, approval, f"U0APPROVER{i:02d}"))
    outcomes = Counter(r.outcome for r in results)
    assert outcomes == Counter({"recorded": 2, "approved": 1, "not_pending": 9})
    assert len(must(store.get(approval.approval_id)).decisions) == 3


def test_overdue_pending_approvals_expire_once(
    store: DynamoApprovalStore, clock: FakeClock
) -> None:
    overdue = create(store, clock, expires_at=int(clock()) - 1)
    create(store, clock)
    approved = create(store, clock, expires_at=int(clock()) + 5)
    decide(store, approved, "U0BOB")
    expired = store.expire_overdue()
    assert [a.approval_id for a in expired] == [overdue.approval_id]
    assert expired[0].status == "expired"
    assert store.expire_overdue() == []


def test_listings_are_newest_first_and_bounded(
    store: DynamoApprovalStore, clock: FakeClock
) -> None:
    made = []
    for _ in range(3):
        made.append(create(store, clock))
        clock.advance(1)
    other = create(
        store, clock, requester={"subject": "user-alice", "issuer": "https://other", "email": None}
    )
    newest_first = [a.approval_id for a in reversed(made)]
    assert [a.approval_id for a in store.by_status("pending", 2)] == [
        other.approval_id,
        newest_first[0],
    ]
    mine = store.by_requester("user-alice", 10, issuer="https://oidc.eksgate.local")
    assert [a.approval_id for a in mine] == newest_first
    assert len(store.by_requester("user-alice", 2)) == 2


def test_a_missing_table_fails_closed(dynamodb: Any) -> None:
    broken = DynamoApprovalStore(dynamodb, "no-such-table")
    with pytest.raises(ApprovalsUnavailable, match="nothing is approved"):
        broken.get("0123456789abcdef0123")
    with pytest.raises(ApprovalsUnavailable):
        broken.consume_once("once:x")
