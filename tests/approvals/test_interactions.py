"""Only Slack's signed requests are believed, and only eksgate's own buttons and form."""

from __future__ import annotations

import json
import time
import urllib.parse

import pytest
from eksgate_local.slack_fake_interactions import encode_payload, sign

from chalicelib.errors import BadRequest, ServiceUnavailable, Unauthorized
from chalicelib.slack.interactions import parse_interaction, verify_slack_request

SECRET = "s3cret"


def signed(body: bytes, *, at: int | None = None, secret: str = SECRET) -> dict[str, str]:
    ts = str(int(time.time()) if at is None else at)
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sign(secret, ts, body)}


def click(action_id: str = "eksgate_approve", value: str = "0123456789abcdef0123") -> dict:
    return {
        "type": "block_actions",
        "user": {"id": "U0BOB", "username": "bob"},
        "trigger_id": "123.456.abc",
        "response_url": "https://hooks.example/actions/1",
        "container": {
            "type": "message",
            "message_ts": "1714565000.000100",
            "channel_id": "C0APPROVALS",
        },
        "channel": {"id": "C0APPROVALS", "name": "eksgate-approvals"},
        "actions": [{"action_id": action_id, "value": value, "type": "button"}],
    }


def submission(reason: str | None, callback_id: str = "eksgate_deny_reason") -> dict:
    return {
        "type": "view_submission",
        "user": {"id": "U0BOB", "username": "bob"},
        "trigger_id": "123.456.def",
        "view": {
            "callback_id": callback_id,
            "private_metadata": "0123456789abcdef0123",
            "state": {
                "values": {"reason": {"reason": {"type": "plain_text_input", "value": reason}}}
            },
        },
    }


def test_a_correctly_signed_request_verifies_with_any_header_case() -> None:
    body = encode_payload(click())
    verify_slack_request(SECRET, signed(body), body)
    lowered = {k.lower(): v for k, v in signed(body).items()}
    verify_slack_request(SECRET, lowered, body)


def test_a_forged_signature_is_refused() -> None:
    body = encode_payload(click())
    with pytest.raises(Unauthorized, match="signature does not verify"):
        verify_slack_request(SECRET, signed(body, secret="not-the-secret"), body)


def test_an_altered_body_is_refused() -> None:
    body = encode_payload(click())
    headers = signed(body)
    altered = encode_payload(click(value="ffffffffffffffffffff"))
    with pytest.raises(Unauthorized, match="signature does not verify"):
        verify_slack_request(SECRET, headers, altered)


def test_a_re_serialised_body_no_longer_verifies() -> None:
    body = encode_payload(click())
    payload = json.loads(urllib.parse.parse_qs(body.decode())["payload"][0])
    reencoded = urllib.parse.urlencode({"payload": json.dumps(payload)}).encode()
    with pytest.raises(Unauthorized):
        verify_slack_request(SECRET, signed(body), reencoded)


def test_a_stale_request_is_refused() -> None:
    body = encode_payload(click())
    old = int(time.time()) - 301
    with pytest.raises(Unauthorized, match="more than 5 minutes"):
        verify_slack_request(SECRET, signed(body, at=old), body)
    verify_slack_request(SECRET, signed(body, at=old), body, now=old + 10)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Slack-Signature": "v0=abc"},
        {"X-Slack-Request-Timestamp": "1"},
        {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=abc"},
    ],
)
def test_missing_or_malformed_signature_headers_are_refused(headers: dict) -> None:
    with pytest.raises(Unauthorized):
        verify_slack_request(SECRET, headers, b"payload=%7B%7D")


def test_without_a_signing_secret_nothing_is_accepted() -> None:
    body = encode_payload(click())
    with pytest.raises(ServiceUnavailable, match="not configured"):
        verify_slack_request("", signed(body, secret=""), body)


def test_button_clicks_parse_into_interactions() -> None:
    approve = parse_interaction(encode_payload(click()))
    assert (approve.kind, approve.approval_id, approve.user_id, approve.user_name) == (
        "approve",
        "0123456789abcdef0123",
        "U0BOB",
        "bob",
    )
    assert approve.channel == "C0APPROVALS" and approve.message_ts == "1714565000.000100"
    assert approve.trigger_id == "123.456.abc"
    deny = parse_interaction(encode_payload(click("eksgate_deny")))
    assert deny.kind == "deny_click"
    assert approve.interaction_key != deny.interaction_key
    assert parse_interaction(encode_payload(click())).interaction_key != ""


def test_the_same_delivery_has_the_same_key() -> None:
    body = encode_payload(click())
    assert parse_interaction(body).interaction_key == parse_interaction(body).interaction_key


def test_a_deny_submission_carries_the_reason() -> None:
    denied = parse_interaction(encode_payload(submission("  not during the freeze ")))
    assert (denied.kind, denied.approval_id, denied.reason) == (
        "deny_submit",
        "0123456789abcdef0123",
        "not during the freeze",
    )
    assert parse_interaction(encode_payload(submission(None))).reason == ""


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"payload=not-json",
        b"payload=%5B%5D",
        b"other=1",
        encode_payload({"type": "shortcut", "user": {"id": "U0BOB"}}),
        encode_payload({"type": "view_closed", "user": {"id": "U0BOB"}}),
        encode_payload(click("someone_elses_button")),
        encode_payload(submission("x", callback_id="another_form")),
        encode_payload({**click(), "user": {}}),
        encode_payload({**click(), "actions": []}),
    ],
)
def test_anything_else_is_a_bad_request(body: bytes) -> None:
    with pytest.raises(BadRequest):
        parse_interaction(body)
