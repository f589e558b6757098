"""Approvals end to end: the gateway asks, Slack shows it, people click, the gateway uses it.

Clicks go through the local Slack fake, signed, to a loopback endpoint that verifies them and
calls ``ApprovalService.handle_interaction``, as the app's route does.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from eksgate_local.slack_fake import SlackFake
from eksgate_local.slack_fake_workspace import FakeUser, default_workspace

from chalicelib.approvals.service import ApprovalService, IdempotencyTable
from chalicelib.slack.directory import SlackDirectory
from tests.approvals.conftest import (
    AGENT,
    CHANNEL,
    PATCH_BODY,
    TABLES,
    Endpoint,
    FakeClock,
    Harness,
    make_harness,
    must,
    patch_rule,
    start_fake,
    ts,
    web_client,
)


def action_ids(blocks: list[dict[str, Any]]) -> list[str]:
    return [
        e.get("action_id")
        for b in blocks
        if b.get("type") == "actions"
        for e in b.get("elements", [])
    ]


def text_of(blocks: list[dict[str, Any]]) -> str:
    parts = []
    for block in blocks:
        if isinstance(block.get("text"), dict):
            parts.append(block["text"]["text"])
        parts += [f["text"] for f in block.get("fields", [])]
        parts += [e.get("text", "") for e in block.get("elements", []) if e.get("type") == "mrkdwn"]
    return "\n".join(parts)


def updates(slack: SlackFake) -> list[Any]:
    return [c for c in slack.api_calls("chat.update") if c.ok]


class LambdaContextStub:
    """What the idempotency layer reads from the Lambda context: the time left."""

    def get_remaining_time_in_millis(self) -> int:
        return 25_000


# -- asking ----------------------------------------------------------------------------------


def test_a_request_is_posted_once_and_reused_while_pending(harness: Harness) -> None:
    first = harness.ask()
    assert first.status == "pending" and first.slack_ts is not None
    (message,) = harness.slack.messages(CHANNEL)
    assert message.ts == first.slack_ts
    assert action_ids(message.blocks) == ["eksgate_approve", "eksgate_deny"]
    assert "Approval needed: patch deployments.apps web in shop" in message.text
    again = harness.ask()
    assert again.approval_id == first.approval_id
    assert len(harness.slack.messages(CHANNEL)) == 1
    assert len(harness.slack.api_calls("chat.postMessage")) == 1


def test_the_rule_can_name_its_own_channel(harness: Harness) -> None:
    approval = harness.ask(patch_rule(channel="U0BOB"))  # a direct message to Bob
    assert approval.slack_channel == "D0BOB"


def test_slack_being_down_keeps_the_approval_pending_with_the_error(harness: Harness) -> None:
    harness.slack.set_down(True)
    approval = harness.ask()
    assert approval.status == "pending" and approval.slack_ts is None
    assert "could not post to Slack channel #eksgate-approvals" in str(approval.slack_error)
    assert harness.get(approval.approval_id).slack_error == approval.slack_error
    assert harness.usable() is None
    harness.slack.set_down(False)
    retried = harness.ask()  # the agent retries: same approval, posted this time
    assert retried.approval_id == approval.approval_id
    assert retried.slack_ts is not None and retried.slack_error is None


def test_a_slack_error_answer_is_recorded_too(harness: Harness) -> None:
    harness.slack.fail_next(status=200, error="channel_not_found", methods=["chat.postMessage"])
    approval = harness.ask()
    assert approval.slack_error is not None and "channel_not_found" in approval.slack_error
    assert approval.to_public_dict()["notified"] is False


# -- deciding --------------------------------------------------------------------------------


def test_an_approver_approves_and_the_message_is_updated_in_place(harness: Harness) -> None:
    approval = harness.ask()
    result = harness.slack.click(ts(approval), "eksgate_approve", "U0BOB")
    assert result.status == 200 and result.within_deadline
    stored = harness.get(approval.approval_id)
    assert stored.status == "approved"
    assert [
        (d["user_id"], d["user_name"], d["email"], d["decision"]) for d in stored.decisions
    ] == [("U0BOB", "bob", "bob@example.com", "approve")]
    message = harness.slack.message(ts(approval))
    assert message.edit_count == 1 and action_ids(message.blocks) == []
    assert "*Approved* by <@U0BOB> at <!date^" in text_of(message.blocks)
    assert harness.slack.ephemerals() == []
    used = harness.usable()
    assert used is not None and used.approval_id == approval.approval_id
    assert harness.usable() is None  # once means once


def test_a_non_approver_is_told_why_and_nothing_changes(harness: Harness) -> None:
    approval = harness.ask()
    harness.slack.click(ts(approval), "eksgate_approve", "U0MALLORY")
    (ephemeral,) = harness.slack.ephemerals("U0MALLORY")
    assert "You are not one of the approvers" in ephemeral.text
    assert "@platform-oncall" in ephemeral.text
    assert harness.get(approval.approval_id) == approval
    assert harness.slack.message(ts(approval)).edit_count == 0
    harness.slack.click(ts(approval), "eksgate_deny", "U0MALLORY")
    assert harness.slack.views() == [] and len(harness.slack.ephemerals("U0MALLORY")) == 2


def test_the_requester_cannot_approve_their_own_request(harness: Harness) -> None:
    approval = harness.ask(patch_rule(approvers=("U0ALICE", "U0BOB")))
    harness.slack.click(ts(approval), "eksgate_approve", "U0ALICE")
    (ephemeral,) = harness.slack.ephemerals("U0ALICE")
    assert "You made this request (as alice@example.com)" in ephemeral.text
    assert harness.get(approval.approval_id).status == "pending"
    harness.slack.click(ts(approval), "eksgate_approve", "U0BOB")
    assert harness.get(approval.approval_id).status == "approved"


def test_two_person_rule_needs_two_different_people(harness: Harness) -> None:
    approval = harness.ask(patch_rule(min_approvers=2))
    harness.slack.click(ts(approval), "eksgate_approve", "U0BOB")
    halfway = harness.get(approval.approval_id)
    assert halfway.status == "pending" and len(halfway.decisions) == 1
    message = harness.slack.message(ts(approval))
    assert "(1 of 2 needed)" in text_of(message.blocks)
    assert action_ids(message.blocks) == ["eksgate_approve", "eksgate_deny"]
    harness.slack.click(ts(approval), "eksgate_approve", "U0BOB")
    (ephemeral,) = harness.slack.ephemerals("U0BOB")
    assert "You already approved this request" in ephemeral.text
    assert harness.get(approval.approval_id) == halfway
    harness.slack.click(ts(approval), "eksgate_approve", "U0CAROL")
    done = harness.get(approval.approval_id)
    assert done.status == "approved"
    assert [d["user_id"] for d in done.decisions] == ["U0BOB", "U0CAROL"]
    assert "*Approved* by <@U0BOB> at" in text_of(harness.slack.message(ts(approval)).blocks)


def test_deny_asks_for_a_reason_then_denies_and_updates_the_message(harness: Harness) -> None:
    approval = harness.ask()
    harness.slack.click(ts(approval), "eksgate_deny", "U0BOB")
    (view,) = harness.slack.views()
    assert view.callback_id == "eksgate_deny_reason"
    assert view.private_metadata == approval.approval_id
    assert harness.get(approval.approval_id).status == "pending"
    result = harness.slack.submit_view(view.id, "U0BOB", {"reason": "not during the freeze"})
    assert result.status == 200 and result.body == b""
    assert harness.slack.view(view.id).state == "submitted"
    denied = harness.get(approval.approval_id)
    assert denied.status == "denied"
    assert denied.decisions[0]["reason"] == "not during the freeze"
    message = harness.slack.message(ts(approval))
    assert action_ids(message.blocks) == []
    assert "*Denied* by <@U0BOB> at" in text_of(message.blocks)
    assert "not during the freeze" in text_of(message.blocks)
    assert harness.usable() is None


def test_an_empty_deny_reason_is_sent_back_to_the_form(harness: Harness) -> None:
    approval = harness.ask()
    harness.slack.click(ts(approval), "eksgate_deny", "U0BOB")
    (view,) = harness.slack.views()
    result = harness.slack.submit_view(view.id, "U0BOB", {"reason": "   "}, client_validation=False)
    assert result.json()["response_action"] == "errors"
    assert "say why" in result.json()["errors"]["reason"].lower()
    assert harness.slack.view(view.id).state == "open"
    assert harness.get(approval.approval_id).status == "pending"


def test_a_deny_submitted_after_someone_approved_is_refused_in_the_form(harness: Harness) -> None:
    approval = harness.ask()
    harness.slack.click(ts(approval), "eksgate_deny", "U0BOB")
    (view,) = harness.slack.views()
    harness.slack.click(ts(approval), "eksgate_approve", "U0CAROL")
    result = harness.slack.submit_view(view.id, "U0BOB", {"reason": "no"})
    assert "already approved by <@U0CAROL>" in result.json()["errors"]["reason"]
    assert harness.get(approval.approval_id).status == "approved"


def test_clicks_on_an_expired_request_are_refused(harness: Harness) -> None:
    approval = harness.ask(patch_rule(ttl=60))
    harness.clock.advance(60)
    harness.slack.click(ts(approval), "eksgate_approve", "U0BOB")
    (ephemeral,) = harness.slack.ephemerals("U0BOB")
    assert "This request expired at" in ephemeral.text
    assert harness.get(approval.approval_id).decisions == ()


def test_expire_overdue_marks_the_messages_expired(harness: Harness) -> None:
    overdue = harness.ask(patch_rule(ttl=60))
    live = harness.ask(patch_rule(ttl=600), body=b'{"spec":{"replicas":6}}')
    harness.clock.advance(61)
    assert len(harness.service.expire_overdue()) == 1
    assert harness.get(overdue.approval_id).status == "expired"
    assert harness.get(live.approval_id).status == "pending"
    message = harness.slack.message(ts(overdue))
    assert action_ids(message.blocks) == [] and "*Expired*" in text_of(message.blocks)
    assert harness.slack.message(ts(live)).edit_count == 0
    assert harness.service.expire_overdue() == []


def test_a_failed_message_update_does_not_undo_the_decision(harness: Harness) -> None:
    approval = harness.ask()
    harness.slack.fail_next(methods=["chat.update"])
    harness.slack.click(ts(approval), "eksgate_approve", "U0BOB")
    assert harness.get(approval.approval_id).status == "approved"


def test_slack_not_saying_who_clicked_takes_no_decision(harness: Harness) -> None:
    approval = harness.ask()
    harness.slack.fail_next(methods=["users.info"])
    result = harness.slack.click(ts(approval), "eksgate_approve", "U0BOB")
    assert result.status == 503 and "users.info" in result.json()["message"]
    assert harness.get(approval.approval_id).status == "pending"


# -- using -----------------------------------------------------------------------------------


def test_a_once_approval_is_used_exactly_once_by_racing_requests(harness: Harness) -> None:
    approval = harness.ask()
    harness.slack.click(ts(approval), "eksgate_approve", "U0BOB")
    barrier = threading.Barrier(2)
    results: list[Any] = []

    def use() -> None:
        barrier.wait()
        results.append(harness.usable())

    threads = [threading.Thread(target=use) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r is not None for r in results) == [False, True]
    assert harness.get(approval.approval_id).status == "used"


def test_a_changed_body_or_requester_does_not_match(harness: Harness) -> None:
    approval = harness.ask()
    harness.slack.click(ts(approval), "eksgate_approve", "U0BOB")
    assert harness.usable(body=b'{"spec":{"replicas":500}}') is None
    assert harness.usable(query="fieldManager=kubectl&dryRun=All") is None
    assert harness.usable(requester=AGENT) is None
    assert harness.usable(body=PATCH_BODY) is not None


def test_a_grant_lets_any_request_of_the_rule_through_until_its_window_ends(
    harness: Harness,
) -> None:
    rule = patch_rule(mode="grant", window=1800)
    approval = harness.ask(rule)
    assert harness.usable(rule) is None
    harness.slack.click(ts(approval), "eksgate_approve", "U0BOB")
    other = "/apis/apps/v1/namespaces/shop/deployments/api"
    for _ in range(3):
        assert harness.usable(rule, path=other, body=b"{}") is not None
    assert harness.usable(rule, requester=AGENT) is None
    assert harness.usable(patch_rule(mode="grant", window=3600)) is None  # an edited rule
    harness.clock.advance(1800)
    assert harness.usable(rule) is None


def test_wait_returns_when_decided_and_redeem_uses_it(harness: Harness) -> None:
    approval = harness.ask()
    timer = threading.Timer(
        0.2, lambda: harness.slack.click(ts(approval), "eksgate_approve", "U0BOB")
    )
    timer.start()
    decided = harness.service.wait(approval.approval_id, 5, poll=0.05)
    timer.join()
    assert decided.status == "approved"
    assert must(harness.service.redeem(decided)).status == "used"
    assert harness.service.redeem(decided) is None
    pending = harness.ask(body=b"{}")
    assert harness.service.wait(pending.approval_id, 0.1, poll=0.05).status == "pending"


# -- who is really clicking, and how often ------------------------------------------------------


def test_forged_and_stale_signatures_are_refused(harness: Harness) -> None:
    approval = harness.ask()
    forged = harness.slack.click(
        ts(approval), "eksgate_approve", "U0BOB", signing_secret="an-attackers-guess"
    )
    assert forged.status == 401 and "signature does not verify" in forged.json()["message"]
    stale = harness.slack.click(
        ts(approval), "eksgate_approve", "U0BOB", timestamp=int(harness.clock()) - 600
    )
    assert stale.status == 401 and "5 minutes" in stale.json()["message"]
    assert harness.get(approval.approval_id).status == "pending"


@pytest.mark.parametrize("with_idempotency_table", [False, True])
def test_retried_and_replayed_deliveries_make_no_second_decision_or_reply(
    store: Any,
    slack: SlackFake,
    clock: FakeClock,
    endpoint: Endpoint,
    dynamodb: Any,
    with_idempotency_table: bool,
) -> None:
    options = (
        {"idempotency": IdempotencyTable(TABLES["IdempotencyTable"], dynamodb)}
        if with_idempotency_table
        else {}
    )
    harness = make_harness(store, slack, clock, endpoint, **options)
    harness.service.register_lambda_context(LambdaContextStub())
    two_person = harness.ask(patch_rule(min_approvers=2))
    first = slack.click(ts(two_person), "eksgate_approve", "U0BOB")
    for retry in (1, 2):
        assert slack.replay(first, retry_num=retry).status == 200
    assert slack.replay(first).status == 200  # a plain replay, as an attacker would send it
    assert len(must(store.get(two_person.approval_id)).decisions) == 1
    assert len(updates(slack)) == 1 and slack.ephemerals() == []

    refused = slack.click(ts(two_person), "eksgate_approve", "U0MALLORY")
    slack.replay(refused, retry_num=1)
    slack.replay(refused)
    assert len(slack.ephemerals("U0MALLORY")) == 1

    slack.click(ts(two_person), "eksgate_deny", "U0CAROL")
    (view,) = slack.views()
    submitted = slack.submit_view(view.id, "U0CAROL", {"reason": "no"})
    assert slack.replay(submitted, retry_num=1).status == 200
    denied = must(store.get(two_person.approval_id))
    assert denied.status == "denied" and len(denied.decisions) == 2
    assert len(updates(slack)) == 2 and len(slack.ephemerals()) == 1
    if with_idempotency_table:
        items = dynamodb.scan(TableName=TABLES["IdempotencyTable"])["Items"]
        assert len(items) == 4  # approve, Mallory's click, deny click, deny submission


def test_a_click_on_an_unknown_approval_gets_a_clear_refusal(harness: Harness) -> None:
    from chalicelib.slack import messages
    from tests.approvals.conftest import sample_approval

    ghost = sample_approval(approval_id="ffffffffffffffffffff")
    text, blocks = messages.request_blocks(ghost)
    posted = web_client(harness.slack).chat_postMessage(channel=CHANNEL, text=text, blocks=blocks)
    result = harness.slack.click(posted["ts"], "eksgate_approve", "U0BOB")
    assert result.status == 200
    (ephemeral,) = harness.slack.ephemerals("U0BOB")
    assert "eksgate has no approval `ffffffffffffffffffff`" in ephemeral.text


def test_thirty_approvers_clicking_at_once_make_one_decision(
    store: Any, clock: FakeClock, endpoint: Endpoint
) -> None:
    crowd = [
        FakeUser(
            f"U0CROWD{i:02d}", f"approver{i:02d}", f"Approver {i}", f"approver{i:02d}@example.com"
        )
        for i in range(30)
    ]
    fake = start_fake(endpoint, default_workspace().with_users(*crowd))
    try:
        harness = make_harness(store, fake, clock, endpoint)
        approval = harness.ask(patch_rule(approvers=tuple(u.id for u in crowd)))
        barrier = threading.Barrier(30)
        statuses: list[int] = []

        def click(user: FakeUser) -> None:
            barrier.wait()
            statuses.append(fake.click(ts(approval), "eksgate_approve", user.id).status)

        threads = [threading.Thread(target=click, args=(u,)) for u in crowd]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert Counter(statuses) == Counter({200: 30})
        stored = must(store.get(approval.approval_id))
        assert stored.status == "approved" and len(stored.decisions) == 1
        assert len(updates(fake)) == 1  # one status change, one message update
        assert len(fake.ephemerals()) == 29
        assert all("already approved" in e.text for e in fake.ephemerals())
    finally:
        fake.stop()


def test_the_directory_caches_briefly(slack: SlackFake) -> None:
    now = [0.0]
    directory = SlackDirectory(web_client(slack), ttl_seconds=60, clock=lambda: now[0])
    assert directory.user("U0BOB").email == "bob@example.com"
    assert directory.group_members("platform-oncall") == {"U0BOB", "U0CAROL"}
    assert directory.group_members("@platform-oncall") == {"U0BOB", "U0CAROL"}
    assert directory.group_members("S0PLATFORM") == {"U0BOB", "U0CAROL"}
    assert directory.group_members("no-such-group") == frozenset()
    directory.user("U0BOB")
    assert len(slack.api_calls("users.info")) == 1
    assert len(slack.api_calls("usergroups.list")) == 1
    now[0] = 61
    directory.user("U0BOB")
    assert len(slack.api_calls("users.info")) == 2


def test_ids_of_the_wrong_shape_are_never_looked_up(slack: SlackFake, store: Any) -> None:
    client = web_client(slack)
    service = ApprovalService(store, client, SlackDirectory(client), channel_default=CHANNEL)
    assert service.get("../etc/passwd") is None
    assert service.get("") is None


def test_a_click_on_a_second_copy_of_the_request_updates_both_copies(harness: Harness) -> None:
    from chalicelib.slack import messages

    approval = harness.ask()
    text, blocks = messages.request_blocks(approval)
    copy = web_client(harness.slack).chat_postMessage(channel=CHANNEL, text=text, blocks=blocks)
    harness.slack.click(copy["ts"], "eksgate_approve", "U0BOB")
    assert harness.get(approval.approval_id).status == "approved"
    for message_ts in (ts(approval), copy["ts"]):
        assert action_ids(harness.slack.message(message_ts).blocks) == []
