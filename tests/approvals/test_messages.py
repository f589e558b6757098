"""Approvers see the whole request, the outcome replaces the buttons, and Slack accepts it."""

from __future__ import annotations

import pytest
from eksgate_local.slack_fake_blockkit import validate_blocks, validate_view

from chalicelib.slack import messages
from chalicelib.slack.messages import (
    decided_blocks,
    deny_reason_modal,
    expired_blocks,
    request_blocks,
)
from tests.approvals.conftest import sample_approval

BOB = {
    "user_id": "U0BOB",
    "user_name": "bob",
    "email": "bob@example.com",
    "decision": "approve",
    "reason": "",
    "time": 1714565000,
}


def action_ids(blocks: list[dict]) -> list[str]:
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def all_text(blocks: list[dict]) -> str:
    parts = []
    for block in blocks:
        if "text" in block:
            parts.append(block["text"]["text"])
        parts += [f["text"] for f in block.get("fields", [])]
        parts += [e.get("text", "") for e in block.get("elements", []) if e.get("type") == "mrkdwn"]
    return "\n".join(parts)


def test_the_request_names_who_what_where_and_has_approve_and_deny_buttons() -> None:
    text, blocks = request_blocks(sample_approval(), "alice@example.com")
    assert validate_blocks(blocks) == []
    assert blocks[0] == {
        "type": "header",
        "text": {
            "type": "plain_text",
            "text": "Approval needed: patch deployments.apps web in shop",
        },
    }
    shown = all_text(blocks)
    for fact in (
        "alice@example.com",
        "prod-eu",
        "*Verb*\npatch",
        "`deployments`",
        "shop / web",
        "engineers / change-workloads",
        "production workloads",
        "<!date^1714565700^{date_short_pretty} {time}|2024-05-01 12:15 UTC>",
        "@platform-oncall",
        "```\n--- current",
        "0123456789abcdef0123",
    ):
        assert fact in shown
    actions = next(b for b in blocks if b["type"] == "actions")["elements"]
    assert [(e["action_id"], e["style"], e["value"]) for e in actions] == [
        ("eksgate_approve", "primary", "0123456789abcdef0123"),
        ("eksgate_deny", "danger", "0123456789abcdef0123"),
    ]
    assert "Approval needed" in text and "alice@example.com" in text


def test_partial_approval_shows_progress_and_keeps_the_buttons() -> None:
    _, blocks = request_blocks(sample_approval(min_approvers=2, decisions=(BOB,)))
    assert "Approved so far by <@U0BOB>" in all_text(blocks)
    assert "(1 of 2 needed)" in all_text(blocks)
    assert action_ids(blocks) == ["eksgate_approve", "eksgate_deny"]


def test_the_outcome_replaces_the_buttons() -> None:
    approved = sample_approval(status="approved", decisions=(BOB,), decided_at=1714565000)
    text, blocks = decided_blocks(approved)
    assert validate_blocks(blocks) == []
    assert action_ids(blocks) == []
    assert "*Approved* by <@U0BOB> at <!date^1714565000^" in all_text(blocks)
    assert text.startswith("Approved by bob")
    denial = {**BOB, "decision": "deny", "reason": "not during the <!here> freeze"}
    _, blocks = decided_blocks(sample_approval(status="denied", decisions=(denial,)))
    shown = all_text(blocks)
    assert "*Denied* by <@U0BOB> at" in shown
    assert "not during the &lt;!here&gt; freeze" in shown and "<!here>" not in shown


def test_an_open_grant_says_until_when() -> None:
    grant = sample_approval(
        status="approved", mode="grant", decisions=(BOB,), window_ends_at=1714568600
    )
    assert "open until <!date^1714568600^" in all_text(decided_blocks(grant)[1])


def test_expired_requests_lose_their_buttons() -> None:
    text, blocks = expired_blocks(sample_approval(status="expired"))
    assert validate_blocks(blocks) == []
    assert action_ids(blocks) == [] and "*Expired*" in all_text(blocks)
    assert text.startswith("Expired")


@pytest.mark.parametrize("status", ["pending", "approved", "denied", "expired", "used"])
def test_every_state_stays_within_slacks_limits_whatever_the_request(status: str) -> None:
    huge = sample_approval(
        status=status,
        reason="r" * 5000,
        cluster="c" * 300,
        requester={"subject": "<!channel>" * 400, "issuer": "x", "email": None},
        request={
            "method": "PATCH",
            "path": "/x" * 2000,
            "query": "q=" + "&" * 3000,
            "verb": "patch",
            "resource": "deployments" * 20,
            "subresource": "scale",
            "namespace": "n" * 253,
            "name": "w" * 253,
            "api_group": "apps",
        },
        diff="\n".join(["+ " + "&<>`" * 40] * 500),
        decisions=(BOB,),
    )
    text, blocks = messages.message_for(huge)
    assert validate_blocks(blocks) == []
    assert len(blocks) <= 50 and len(text) <= 3000
    assert "<!channel>" not in all_text(blocks)


def test_backticks_in_the_diff_cannot_close_the_code_block() -> None:
    _, blocks = request_blocks(sample_approval(diff="+ command: echo ```rm -rf```"))
    diff = next(b for b in blocks if "What would change" in b.get("text", {}).get("text", ""))
    assert diff["text"]["text"].count("```") == 2


def test_the_deny_form_asks_for_a_reason() -> None:
    view = deny_reason_modal("0123456789abcdef0123")
    assert validate_view(view) == []
    assert view["callback_id"] == "eksgate_deny_reason"
    assert view["private_metadata"] == "0123456789abcdef0123"
    assert view["title"]["text"] == "Deny request" and view["submit"]["text"] == "Deny"
    (block,) = view["blocks"]
    assert block["block_id"] == "reason" and block["element"]["action_id"] == "reason"
    assert block["element"]["multiline"] is True


def test_the_header_is_cut_to_150_characters() -> None:
    long_name = sample_approval(request={**sample_approval().request, "name": "w" * 200})
    _, blocks = request_blocks(long_name)
    assert len(blocks[0]["text"]["text"]) <= 150
    assert long_name.approval_id in all_text(blocks)
