"""The local Slack fake behaves like Slack for the calls and clicks eksgate depends on.

Every Web API call goes through slack_sdk's own WebClient, and every interaction lands on a
tiny recording HTTP server and is checked with slack_sdk's SignatureVerifier, so the fake is
held to what the real client and the real verifier accept.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
from eksgate_local.slack_fake import SlackFake, SlackFakeError
from eksgate_local.slack_fake_http import parse_request_args
from eksgate_local.slack_fake_interactions import DeliveryError, decode_payload, sign
from eksgate_local.slack_fake_render import mrkdwn_to_text, render_message, render_view
from eksgate_local.slack_fake_workspace import FakeChannel, FakeUser, default_workspace
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient

from tests.loopback import Answer, LoopbackServer, Request

SECRET = "test-signing-secret"

APPROVAL_BLOCKS: list[dict[str, Any]] = [
    {"type": "header", "text": {"type": "plain_text", "text": "Approval needed: patch shop/web"}},
    {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "<@U0ALICE> wants to *patch* `deployments/web`"},
        "fields": [
            {"type": "mrkdwn", "text": "*Cluster*\nprod-eu"},
            {"type": "mrkdwn", "text": "*Approvers*\n<!subteam^S0PLATFORM>"},
        ],
    },
    {"type": "section", "text": {"type": "mrkdwn", "text": "```- replicas: 2\n+ replicas: 5```"}},
    {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "approval apr-1 · expires in 15m"}],
    },
    {
        "type": "actions",
        "block_id": "decision",
        "elements": [
            {
                "type": "button",
                "action_id": "approve",
                "text": {"type": "plain_text", "text": "Approve"},
                "style": "primary",
                "value": "apr-1",
            },
            {
                "type": "button",
                "action_id": "deny",
                "text": {"type": "plain_text", "text": "Deny"},
                "style": "danger",
                "value": "apr-1",
            },
        ],
    },
]

DENY_MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "deny_reason",
    "private_metadata": "apr-1",
    "title": {"type": "plain_text", "text": "Deny request"},
    "submit": {"type": "plain_text", "text": "Deny"},
    "close": {"type": "plain_text", "text": "Cancel"},
    "blocks": [
        {
            "type": "input",
            "block_id": "reason_block",
            "label": {"type": "plain_text", "text": "Why?"},
            "element": {"type": "plain_text_input", "action_id": "reason", "multiline": True},
        }
    ],
}


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def payload(self) -> dict[str, Any]:
        return decode_payload(self.body)


@dataclass
class Recorder:
    """A stand-in for the app's interactivity endpoint: records requests, answers as told."""

    url: str
    requests: list[Recorded] = field(default_factory=list)
    answers: list[tuple[int, bytes]] = field(default_factory=list)

    @property
    def last(self) -> Recorded:
        return self.requests[-1]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder(url="")

    def answer(request: Request) -> Answer:
        rec.requests.append(Recorded(request.target, request.headers, request.body))
        return rec.answers.pop(0) if rec.answers else (200, b"")

    with LoopbackServer(answer) as server:
        rec.url = f"{server.url}/slack/interactions"
        yield rec


@pytest.fixture
def fake(recorder: Recorder) -> Iterator[SlackFake]:
    with SlackFake(signing_secret=SECRET, interactions_url=recorder.url) as slack:
        yield slack


@pytest.fixture
def client(fake: SlackFake) -> WebClient:
    # No retry handlers: a dropped connection should fail at once, not after a back-off.
    return WebClient(token=fake.bot_token, base_url=fake.base_url, retry_handlers=[])


def post_approval(client: WebClient) -> str:
    response = client.chat_postMessage(
        channel="#eksgate-approvals", text="Approval needed", blocks=APPROVAL_BLOCKS
    )
    return str(response["ts"])


def slack_error(call: Any) -> str:
    with pytest.raises(SlackApiError) as raised:
        call()
    return str(raised.value.response["error"])


# -- Web API through slack_sdk --------------------------------------------------------------


def test_base_url_is_loopback_and_ends_with_api(fake: SlackFake) -> None:
    assert fake.base_url.startswith("http://127.0.0.1:")
    assert fake.base_url.endswith("/api/")
    assert fake.port > 0


def test_auth_test_names_the_bot_and_the_team(client: WebClient) -> None:
    response = client.auth_test()
    assert response["team_id"] == "T0EKSGATE"
    assert response["user_id"] == "U0EKSGATEBOT"
    assert response["bot_id"]


def test_only_the_configured_bot_token_is_accepted(fake: SlackFake) -> None:
    wrong = WebClient(token="xoxb-someone-else", base_url=fake.base_url)
    assert slack_error(wrong.auth_test) == "invalid_auth"
    missing = WebClient(base_url=fake.base_url)
    assert slack_error(missing.auth_test) == "not_authed"
    with pytest.raises(ValueError):
        SlackFake(bot_token="xoxp-user-token")


def test_unknown_method_is_refused(client: WebClient) -> None:
    assert slack_error(lambda: client.api_call("chat.scheduleMessage")) == "unknown_method"


def test_post_message_answers_like_slack_and_is_recorded(
    client: WebClient, fake: SlackFake
) -> None:
    response = client.chat_postMessage(
        channel="#eksgate-approvals", text="Approval needed", blocks=APPROVAL_BLOCKS
    )
    assert response["channel"] == "C0APPROVALS"
    message = response["message"]
    assert message["ts"] == response["ts"]
    assert message["bot_id"] == "B0EKSGATE" and message["user"] == "U0EKSGATEBOT"
    # Slack gives every block an id, and interaction payloads rely on it.
    assert all(block.get("block_id") for block in message["blocks"])
    stored = fake.message(response["ts"])
    assert stored.channel == "C0APPROVALS" and stored.text == "Approval needed"
    assert stored.action_ids() == ["approve", "deny"]
    assert [m.ts for m in fake.messages("eksgate-approvals")] == [response["ts"]]
    assert fake.messages(channel="C0APPROVALS") == fake.messages()


def test_post_message_errors_use_slacks_codes(client: WebClient) -> None:
    assert slack_error(lambda: client.chat_postMessage(channel="#nope", text="x")) == (
        "channel_not_found"
    )
    no_text = {"channel": "C0APPROVALS"}
    assert slack_error(lambda: client.api_call("chat.postMessage", json=no_text)) == "no_text"
    assert slack_error(lambda: client.api_call("chat.postMessage", json={"text": "x"})) == (
        "invalid_arguments"
    )


def test_blocks_slack_would_reject_are_rejected(client: WebClient) -> None:
    long_header = [{"type": "header", "text": {"type": "plain_text", "text": "x" * 151}}]
    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel="C0APPROVALS", text="x", blocks=long_header)
    assert raised.value.response["error"] == "invalid_blocks"
    assert "/blocks/0/text/text" in raised.value.response["response_metadata"]["messages"][0]


def test_a_channel_the_bot_is_not_in_refuses_posts() -> None:
    workspace = replace(
        default_workspace(), channels=(FakeChannel("C0SECRET", "secret", is_member=False),)
    )
    with SlackFake(workspace=workspace) as slack:
        client = WebClient(token=slack.bot_token, base_url=slack.base_url)
        assert slack_error(lambda: client.chat_postMessage(channel="C0SECRET", text="x")) == (
            "not_in_channel"
        )


def test_form_encoded_calls_with_blocks_as_a_json_string_work(
    client: WebClient, fake: SlackFake
) -> None:
    response = client.api_call(
        "chat.postMessage",
        params={"channel": "C0APPROVALS", "text": "form", "blocks": json.dumps(APPROVAL_BLOCKS)},
    )
    assert fake.message(response["ts"]).action_ids() == ["approve", "deny"]
    assert fake.api_calls("chat.postMessage")[-1].ok


def test_request_args_parse_from_query_form_json_and_multipart() -> None:
    assert parse_request_args("user=U0BOB", "", b"") == {"user": "U0BOB"}
    assert parse_request_args("", "application/x-www-form-urlencoded", b"a=1&b=x+y") == {
        "a": "1",
        "b": "x y",
    }
    assert parse_request_args("", "application/json;charset=utf-8", b'{"a": [1]}') == {"a": [1]}
    multipart = (
        b'--XX\r\nContent-Disposition: form-data; name="channel"\r\n\r\nC0APPROVALS\r\n--XX--\r\n'
    )
    assert parse_request_args("", "multipart/form-data; boundary=XX", multipart) == {
        "channel": "C0APPROVALS"
    }


def test_update_replaces_content_and_keeps_the_history(client: WebClient, fake: SlackFake) -> None:
    ts = post_approval(client)
    response = client.chat_update(
        channel="C0APPROVALS",
        ts=ts,
        text="Approved by <@U0BOB>",
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "Approved by <@U0BOB>"}}],
    )
    assert response["ts"] == ts and response["message"]["edited"]
    message = fake.message(ts)
    assert message.edit_count == 1
    assert message.action_ids() == []
    assert [v.source for v in message.versions] == ["chat.postMessage", "chat.update"]
    assert message.versions[0].blocks[-1]["block_id"] == "decision"
    # Left-out blocks are kept, as in Slack.
    client.chat_update(channel="C0APPROVALS", ts=ts, text="text only")
    assert fake.message(ts).text == "text only" and fake.message(ts).blocks
    assert slack_error(
        lambda: client.chat_update(channel="C0APPROVALS", ts="1.000001", text="x")
    ) == ("message_not_found")
    assert slack_error(lambda: client.chat_update(channel="U0BOB", ts=ts, text="x")) == (
        "message_not_found"
    )


def test_ephemeral_messages_are_recorded_for_their_user(client: WebClient, fake: SlackFake) -> None:
    response = client.chat_postEphemeral(channel="C0APPROVALS", user="U0MALLORY", text="not you")
    assert response["message_ts"]
    (ephemeral,) = fake.ephemerals(user="U0MALLORY")
    assert ephemeral.text == "not you" and ephemeral.source == "chat.postEphemeral"
    assert fake.ephemerals(user="U0BOB") == []
    assert (
        slack_error(
            lambda: client.chat_postEphemeral(channel="C0APPROVALS", user="U0NOPE", text="x")
        )
        == "user_not_found"
    )


def test_permalink_points_at_the_fake_which_shows_the_message(
    client: WebClient, fake: SlackFake
) -> None:
    ts = post_approval(client)
    permalink = client.chat_getPermalink(channel="C0APPROVALS", message_ts=ts)["permalink"]
    assert permalink == f"{fake.url}archives/C0APPROVALS/p{ts.replace('.', '')}"
    with urllib.request.urlopen(permalink, timeout=5) as page:
        assert "[Approve] [Deny]" in page.read().decode()
    assert (
        slack_error(lambda: client.chat_getPermalink(channel="C0APPROVALS", message_ts="1.000001"))
        == "message_not_found"
    )


def test_users_are_found_by_id_and_by_email(client: WebClient) -> None:
    bob = client.users_info(user="U0BOB")["user"]
    assert (bob["id"], bob["name"], bob["profile"]["email"], bob["is_bot"]) == (
        "U0BOB",
        "bob",
        "bob@example.com",
        False,
    )
    assert bob["real_name"] and bob["team_id"] == "T0EKSGATE" and bob["deleted"] is False
    alice = client.users_lookupByEmail(email="Alice@Example.com")["user"]
    assert alice["id"] == "U0ALICE"
    assert client.users_info(user="U0EKSGATEBOT")["user"]["is_bot"] is True
    assert slack_error(lambda: client.users_info(user="U0NOPE")) == "user_not_found"
    assert slack_error(lambda: client.users_lookupByEmail(email="eve@example.com")) == (
        "users_not_found"
    )


def test_a_deactivated_user_is_visible_by_id_but_not_by_email() -> None:
    gone = FakeUser("U0GONE", "gone", "Gone Person", "gone@example.com", deleted=True)
    with SlackFake(workspace=default_workspace().with_users(gone)) as slack:
        client = WebClient(token=slack.bot_token, base_url=slack.base_url)
        assert client.users_info(user="U0GONE")["user"]["deleted"] is True
        assert slack_error(lambda: client.users_lookupByEmail(email="gone@example.com")) == (
            "users_not_found"
        )


def test_user_groups_list_their_members(client: WebClient) -> None:
    assert client.usergroups_users_list(usergroup="S0PLATFORM")["users"] == ["U0BOB", "U0CAROL"]
    (group,) = client.usergroups_list(include_users=True, include_count=True)["usergroups"]
    assert (group["id"], group["handle"], group["users"], group["user_count"]) == (
        "S0PLATFORM",
        "platform-oncall",
        ["U0BOB", "U0CAROL"],
        2,
    )
    assert "users" not in client.usergroups_list()["usergroups"][0]
    assert slack_error(lambda: client.usergroups_users_list(usergroup="S0NOPE")) == (
        "no_such_subteam"
    )


def test_conversations_info_knows_channels_and_direct_messages(
    client: WebClient, fake: SlackFake
) -> None:
    channel = client.conversations_info(channel="C0APPROVALS")["channel"]
    assert (channel["id"], channel["name"], channel["is_member"]) == (
        "C0APPROVALS",
        "eksgate-approvals",
        True,
    )
    assert slack_error(lambda: client.conversations_info(channel="C0NOPE")) == "channel_not_found"
    dm = client.chat_postMessage(channel="U0BOB", text="psst")["channel"]
    assert dm.startswith("D")
    assert client.conversations_info(channel=dm)["channel"]["user"] == "U0BOB"
    assert [m.text for m in fake.messages("U0BOB")] == ["psst"]


# -- clicks and modals ----------------------------------------------------------------------


def test_click_posts_a_signed_block_actions_payload_like_slack(
    client: WebClient, fake: SlackFake, recorder: Recorder
) -> None:
    ts = post_approval(client)
    result = fake.click(ts, "approve", "U0BOB")
    assert result.status == 200 and result.within_deadline
    sent = recorder.last
    assert sent.path == "/slack/interactions"
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent.body.startswith(b"payload=")
    assert SignatureVerifier(SECRET).is_valid_request(sent.body, sent.headers)
    assert not SignatureVerifier("another-secret").is_valid_request(sent.body, sent.headers)
    # Slack's encoder escapes "/": an app must verify the raw bytes, not re-serialised JSON.
    assert "\\/" in urllib.parse.unquote_plus(sent.body.decode())
    payload = sent.payload
    assert payload["type"] == "block_actions"
    assert payload["user"] == {
        "id": "U0BOB",
        "username": "bob",
        "name": "bob",
        "team_id": "T0EKSGATE",
    }
    assert payload["api_app_id"] == "A0EKSGATE" and payload["token"]
    assert payload["container"] == {
        "type": "message",
        "message_ts": ts,
        "channel_id": "C0APPROVALS",
        "is_ephemeral": False,
    }
    assert payload["team"]["id"] == "T0EKSGATE"
    assert payload["channel"] == {"id": "C0APPROVALS", "name": "eksgate-approvals"}
    assert (
        payload["message"]["ts"] == ts
        and payload["message"]["blocks"][-1]["block_id"] == "decision"
    )
    assert payload["response_url"].startswith(fake.url + "actions/")
    assert payload["trigger_id"]
    (action,) = payload["actions"]
    assert action["action_id"] == "approve" and action["block_id"] == "decision"
    assert action["value"] == "apr-1" and action["type"] == "button"
    assert action["text"]["text"] == "Approve" and float(action["action_ts"]) > 0
    assert fake.interactions()[-1].status == 200


def test_signature_matches_the_documented_formula() -> None:
    ts, body = "1531420618", "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J"
    verifier = SignatureVerifier("8f742231b10e8888abcd99yyyzzz85a5")
    assert sign("8f742231b10e8888abcd99yyyzzz85a5", ts, body) == verifier.generate_signature(
        timestamp=ts, body=body
    )


def test_a_stale_timestamp_fails_verification(
    client: WebClient, fake: SlackFake, recorder: Recorder
) -> None:
    fake.click(post_approval(client), "approve", "U0BOB", timestamp=int(time.time()) - 600)
    assert not SignatureVerifier(SECRET).is_valid_request(recorder.last.body, recorder.last.headers)


def test_clicking_what_is_not_there_is_a_clear_error(client: WebClient, fake: SlackFake) -> None:
    ts = post_approval(client)
    with pytest.raises(SlackFakeError, match=r"\['approve', 'deny'\]"):
        fake.click(ts, "escalate", "U0BOB")
    with pytest.raises(SlackFakeError, match="U0EVE"):
        fake.click(ts, "approve", "U0EVE")
    with pytest.raises(SlackFakeError, match="no message"):
        fake.click("1.000001", "approve", "U0BOB")


def test_deny_with_a_reason_opens_a_modal_and_submits_it(
    client: WebClient, fake: SlackFake, recorder: Recorder
) -> None:
    fake.click(post_approval(client), "deny", "U0BOB")
    trigger_id = recorder.last.payload["trigger_id"]
    opened = client.views_open(trigger_id=trigger_id, view=DENY_MODAL)["view"]
    assert opened["id"].startswith("V") and opened["callback_id"] == "deny_reason"
    (view,) = fake.views()
    assert view.user == "U0BOB" and view.state == "open" and view.private_metadata == "apr-1"

    result = fake.submit_view(view.id, "U0BOB", {"reason": "not during the freeze"})
    assert result.status == 200
    sent = recorder.last
    assert SignatureVerifier(SECRET).is_valid_request(sent.body, sent.headers)
    payload = sent.payload
    assert payload["type"] == "view_submission"
    assert payload["user"]["id"] == "U0BOB"
    assert payload["view"]["callback_id"] == "deny_reason"
    assert payload["view"]["private_metadata"] == "apr-1"
    assert payload["view"]["state"]["values"] == {
        "reason_block": {"reason": {"type": "plain_text_input", "value": "not during the freeze"}}
    }
    assert fake.view(view.id).state == "submitted"


def test_trigger_ids_are_single_use_and_short_lived(
    client: WebClient, fake: SlackFake, recorder: Recorder
) -> None:
    ts = post_approval(client)
    fake.click(ts, "deny", "U0BOB")
    trigger_id = recorder.last.payload["trigger_id"]
    client.views_open(trigger_id=trigger_id, view=DENY_MODAL)
    assert slack_error(lambda: client.views_open(trigger_id=trigger_id, view=DENY_MODAL)) == (
        "exchanged_trigger_id"
    )
    assert slack_error(lambda: client.views_open(trigger_id="1.2.abc", view=DENY_MODAL)) == (
        "invalid_trigger_id"
    )
    fake.click(ts, "deny", "U0BOB")
    late = recorder.last.payload["trigger_id"]
    fake.api.trigger_ttl = 0.0  # any time at all is too late now, without sleeping in a test
    assert slack_error(lambda: client.views_open(trigger_id=late, view=DENY_MODAL)) == (
        "expired_trigger_id"
    )


def test_a_modal_slack_would_reject_is_rejected(
    client: WebClient, fake: SlackFake, recorder: Recorder
) -> None:
    fake.click(post_approval(client), "deny", "U0BOB")
    too_long = {**DENY_MODAL, "title": {"type": "plain_text", "text": "Deny this request, please"}}
    with pytest.raises(SlackApiError) as raised:
        client.views_open(trigger_id=recorder.last.payload["trigger_id"], view=too_long)
    assert raised.value.response["error"] == "invalid_arguments"
    assert "/view/title/text" in raised.value.response["response_metadata"]["messages"][0]
    # A rejected view leaves the trigger unused.
    client.views_open(trigger_id=recorder.last.payload["trigger_id"], view=DENY_MODAL)


def test_validation_errors_from_the_app_keep_the_modal_open(
    client: WebClient, fake: SlackFake, recorder: Recorder
) -> None:
    fake.click(post_approval(client), "deny", "U0BOB")
    view_id = client.views_open(trigger_id=recorder.last.payload["trigger_id"], view=DENY_MODAL)[
        "view"
    ]["id"]
    recorder.answers.append(
        (200, b'{"response_action": "errors", "errors": {"reason_block": "Say more"}}')
    )
    fake.submit_view(view_id, values={"reason_block": {"reason": "no"}})
    assert fake.view(view_id).state == "open"
    assert fake.view(view_id).errors == {"reason_block": "Say more"}


def test_slack_would_not_submit_an_empty_required_input_or_someone_elses_modal(
    client: WebClient, fake: SlackFake, recorder: Recorder
) -> None:
    fake.click(post_approval(client), "deny", "U0BOB")
    view_id = client.views_open(trigger_id=recorder.last.payload["trigger_id"], view=DENY_MODAL)[
        "view"
    ]["id"]
    sent_before = len(recorder.requests)
    with pytest.raises(SlackFakeError, match="required"):
        fake.submit_view(view_id, values={"reason": "   "})
    with pytest.raises(SlackFakeError, match="only shown to U0BOB"):
        fake.submit_view(view_id, "U0MALLORY", {"reason": "x"})
    with pytest.raises(SlackFakeError, match="no input"):
        fake.submit_view(view_id, values={"why": "x"})
    assert len(recorder.requests) == sent_before
    # Tests of the app's own checks can still send what a real client would block.
    fake.submit_view(view_id, values={"reason": ""}, client_validation=False)
    assert recorder.last.payload["view"]["state"]["values"]["reason_block"]["reason"]["value"] == ""


def test_views_update_replaces_the_modal_and_honours_the_hash(
    client: WebClient, fake: SlackFake, recorder: Recorder
) -> None:
    fake.click(post_approval(client), "deny", "U0BOB")
    opened = client.views_open(trigger_id=recorder.last.payload["trigger_id"], view=DENY_MODAL)[
        "view"
    ]
    changed = {**DENY_MODAL, "title": {"type": "plain_text", "text": "Denied"}}
    assert (
        slack_error(lambda: client.views_update(view_id=opened["id"], view=changed, hash="stale"))
        == "hash_conflict"
    )
    updated = client.views_update(view_id=opened["id"], view=changed, hash=opened["hash"])["view"]
    assert updated["title"]["text"] == "Denied"
    assert len(fake.view(opened["id"]).versions) == 2
    assert slack_error(lambda: client.views_update(view_id="V0NOPE", view=changed)) == "not_found"


def test_a_button_removed_by_an_update_can_still_be_clicked_from_a_stale_client(
    client: WebClient, fake: SlackFake, recorder: Recorder
) -> None:
    ts = post_approval(client)
    client.chat_update(channel="C0APPROVALS", ts=ts, text="Approved", blocks=[])
    with pytest.raises(SlackFakeError, match="no action"):
        fake.click(ts, "deny", "U0CAROL")
    fake.click(ts, "deny", "U0CAROL", allow_stale=True)
    payload = recorder.last.payload
    assert payload["actions"][0]["action_id"] == "deny"
    assert payload["message"]["blocks"][-1]["block_id"] == "decision"


def test_two_approvers_can_click_at_the_same_moment(
    client: WebClient, fake: SlackFake, recorder: Recorder
) -> None:
    ts = post_approval(client)
    clickers = [
        threading.Thread(target=fake.click, args=(ts, "approve", user))
        for user in ("U0BOB", "U0CAROL")
    ]
    for t in clickers:
        t.start()
    for t in clickers:
        t.join()
    assert sorted(r.payload["user"]["id"] for r in recorder.requests) == ["U0BOB", "U0CAROL"]


def test_clicking_a_button_in_an_ephemeral_message(
    client: WebClient, fake: SlackFake, recorder: Recorder
) -> None:
    ts = client.chat_postEphemeral(
        channel="C0APPROVALS", user="U0BOB", text="Approve?", blocks=APPROVAL_BLOCKS[-1:]
    )["message_ts"]
    fake.click(ts, "approve", "U0BOB")
    payload = recorder.last.payload
    assert payload["container"]["is_ephemeral"] is True and "message" not in payload
    with pytest.raises(SlackFakeError, match="only visible"):
        fake.click(ts, "approve", "U0CAROL")


# -- response_url ---------------------------------------------------------------------------


def test_response_url_replaces_posts_ephemerally_and_deletes(
    client: WebClient, fake: SlackFake, recorder: Recorder
) -> None:
    ts = post_approval(client)
    fake.click(ts, "approve", "U0BOB")
    hook = WebhookClient(recorder.last.payload["response_url"])

    assert hook.send(text="Approved by bob", replace_original=True).status_code == 200
    assert fake.message(ts).text == "Approved by bob"
    assert fake.message(ts).versions[-1].source == "response_url"

    assert hook.send(text="Only you see this").status_code == 200
    assert [e.text for e in fake.ephemerals("U0BOB")] == ["Only you see this"]

    assert hook.send(text="Everyone sees this", response_type="in_channel").status_code == 200
    assert fake.messages()[-1].text == "Everyone sees this"

    assert hook.send_dict({"delete_original": True}).status_code == 200
    assert fake.message(ts).deleted
    assert [p.outcome for p in fake.response_url_posts()] == [
        "replaced",
        "ephemeral",
        "in_channel",
        "deleted",
    ]
    assert hook.send(text="fifth use").status_code == 200
    # Slack allows five uses of one response_url.
    assert hook.send(text="sixth use").status_code == 404
    assert WebhookClient(fake.url + "actions/T0EKSGATE/1/unknown").send(text="x").status_code == 404


# -- retries and replays --------------------------------------------------------------------


def test_retries_carry_slack_retry_headers_and_replays_are_byte_identical(
    client: WebClient, fake: SlackFake, recorder: Recorder
) -> None:
    ts = post_approval(client)
    first = fake.click(ts, "approve", "U0BOB", retry_num=1, retry_reason="http_timeout")
    assert recorder.last.headers["X-Slack-Retry-Num"] == "1"
    assert recorder.last.headers["X-Slack-Retry-Reason"] == "http_timeout"

    original = recorder.last
    fake.replay(first)
    replayed = recorder.last
    assert replayed.body == original.body
    for name in ("X-Slack-Signature", "X-Slack-Request-Timestamp", "X-Slack-Retry-Num"):
        assert replayed.headers[name] == original.headers[name]

    fake.replay(first, retry_num=2, retry_reason="http_error")
    assert recorder.last.body == original.body
    assert recorder.last.headers["X-Slack-Retry-Num"] == "2"
    assert recorder.last.headers["X-Slack-Retry-Reason"] == "http_error"
    assert len(fake.interactions()) == 3


def test_the_apps_answer_is_returned_whatever_its_status(
    client: WebClient, fake: SlackFake, recorder: Recorder
) -> None:
    recorder.answers.append((401, b'{"error": "bad signature"}'))
    result = fake.click(post_approval(client), "approve", "U0BOB")
    assert result.status == 401 and result.json() == {"error": "bad signature"}


def test_an_unreachable_app_is_a_delivery_error(client: WebClient, fake: SlackFake) -> None:
    ts = post_approval(client)
    with pytest.raises(DeliveryError, match="could not deliver"):
        fake.click(ts, "approve", "U0BOB", interactions_url="http://127.0.0.1:9/nothing")


# -- Slack being down -----------------------------------------------------------------------


def test_fail_next_fails_then_recovers(client: WebClient, fake: SlackFake) -> None:
    fake.fail_next(1)
    with pytest.raises(SlackApiError) as raised:
        client.auth_test()
    assert raised.value.response.status_code == 500
    assert client.auth_test()["ok"]

    fake.fail_next(1, methods=["chat.update"])
    ts = post_approval(client)  # not chat.update: unaffected
    assert slack_error(lambda: client.chat_update(channel="C0APPROVALS", ts=ts, text="x")) == (
        "fatal_error"
    )

    fake.fail_next(1, status=429)
    with pytest.raises(SlackApiError) as raised:
        client.auth_test()
    assert raised.value.response.status_code == 429
    assert raised.value.response.headers["Retry-After"] == "1"
    assert raised.value.response["error"] == "ratelimited"

    fake.fail_next(1, status=200, error="team_access_not_granted")
    assert slack_error(client.auth_test) == "team_access_not_granted"
    assert [c.ok for c in fake.api_calls("auth.test")] == [False, True, False, False]


def test_down_drops_connections_until_it_is_up_again(client: WebClient, fake: SlackFake) -> None:
    fake.set_down(True)
    with pytest.raises((ConnectionError, urllib.error.URLError)):
        client.auth_test()
    fake.set_down(False)
    assert client.auth_test()["ok"]


def test_hanging_down_makes_the_callers_timeout_fire(fake: SlackFake) -> None:
    impatient = WebClient(
        token=fake.bot_token, base_url=fake.base_url, timeout=1, retry_handlers=[]
    )
    fake.set_down(True, mode="hang")
    started = time.monotonic()
    with pytest.raises((TimeoutError, urllib.error.URLError)):
        impatient.auth_test()
    assert time.monotonic() - started < 3
    fake.set_down(False)
    assert impatient.auth_test()["ok"]


# -- waiting, concurrency, control endpoints ------------------------------------------------


def test_wait_for_message_sees_posts_and_updates_from_other_threads(
    client: WebClient, fake: SlackFake
) -> None:
    ts = post_approval(client)

    def later() -> None:
        time.sleep(0.1)
        client.chat_update(channel="C0APPROVALS", ts=ts, text="Approved")

    threading.Thread(target=later).start()
    updated = fake.wait_for_message(lambda m: m.ts == ts and m.edit_count > 0, timeout=5)
    assert updated.text == "Approved"
    with pytest.raises(TimeoutError):
        fake.wait_for_message(lambda m: "never" in m.text, timeout=0.1)


def test_concurrent_posts_get_unique_increasing_ts(client: WebClient, fake: SlackFake) -> None:
    def post(i: int) -> None:
        client.chat_postMessage(channel="C0APPROVALS", text=f"m{i}")

    threads = [threading.Thread(target=post, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stamps = [m.ts for m in fake.messages()]
    assert len(set(stamps)) == 20 and stamps == sorted(stamps, key=float)


def test_snapshots_cannot_change_the_fake(client: WebClient, fake: SlackFake) -> None:
    ts = post_approval(client)
    fake.message(ts).blocks.clear()
    assert fake.message(ts).blocks


def test_control_endpoints_let_another_process_click(
    client: WebClient, fake: SlackFake, recorder: Recorder
) -> None:
    ts = post_approval(client)

    def control(action: str, body: dict[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(fake.url + "_fake/" + action, data=data)
        with urllib.request.urlopen(request, timeout=5) as answer:
            return json.loads(answer.read())

    state = control("state")
    assert [m["ts"] for m in state["messages"]] == [ts]
    answer = control("click", {"message_ts": ts, "action_id": "approve", "user_id": "U0CAROL"})
    assert answer["status"] == 200
    assert recorder.last.payload["user"]["id"] == "U0CAROL"
    with pytest.raises(urllib.error.HTTPError) as refused:
        control("click", {"message_ts": ts, "action_id": "nope", "user_id": "U0CAROL"})
    assert refused.value.code == 409

    control("click", {"message_ts": ts, "action_id": "deny", "user_id": "U0BOB"})
    client.views_open(trigger_id=recorder.last.payload["trigger_id"], view=DENY_MODAL)
    view_id = control("state")["views"][0]["id"]
    answer = control("submit_view", {"view_id": view_id, "values": {"reason": "freeze"}})
    assert answer["status"] == 200
    assert recorder.last.payload["view"]["state"]["values"]["reason_block"]["reason"]["value"] == (
        "freeze"
    )


def test_control_endpoints_can_be_switched_off() -> None:
    with SlackFake(control_endpoints=False) as slack:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(slack.url + "_fake/state", timeout=5)
        assert refused.value.code == 404
    assert SlackFake(host="0.0.0.0").control_endpoints is False
    assert SlackFake(host="::1").control_endpoints is True


# -- rendering ------------------------------------------------------------------------------


def test_render_message_shows_blocks_buttons_and_action_ids() -> None:
    names = {"U0ALICE": "alice", "S0PLATFORM": "platform-oncall"}
    shown = render_message(
        {"channel": "#eksgate-approvals", "ts": "1.000100", "blocks": APPROVAL_BLOCKS},
        names=names,
    )
    lines = shown.splitlines()
    assert lines[0].startswith("+- #eksgate-approvals · ts 1.000100 ")
    assert lines[-1].startswith("+---") and lines[-1].endswith("+")
    assert len({len(line) for line in lines}) == 1  # a closed box
    assert "Approval needed: patch shop/web" in shown
    assert "@alice wants to *patch* `deployments/web`" in shown
    assert "*Cluster*: prod-eu" in shown and "*Approvers*: @platform-oncall" in shown
    assert "|   - replicas: 2" in shown and "|   + replicas: 5" in shown
    assert "approval apr-1 · expires in 15m" in shown
    assert "[Approve] [Deny]   (action ids: approve, deny)" in shown


def test_render_falls_back_to_text_and_shows_edits() -> None:
    shown = render_message({"text": "plain <https://x.example|link> &amp; more", "edit_count": 2})
    assert "plain link (https://x.example) & more" in shown and "updated 2x" in shown
    assert mrkdwn_to_text("<@U1> <#C1> <!here>", {"U1": "bob", "C1": "ops"}) == "@bob #ops @here"


def test_render_view_shows_inputs_and_buttons() -> None:
    shown = render_view(DENY_MODAL)
    assert "modal: Deny request" in shown
    assert "Why?: <plain_text_input>   (action id: reason)" in shown
    assert "[Cancel] [Deny]" in shown


def test_echo_prints_new_updated_and_ephemeral_messages_and_clicks(recorder: Recorder) -> None:
    printed: list[str] = []
    with SlackFake(interactions_url=recorder.url, printer=printed.append) as slack:
        client = WebClient(token=slack.bot_token, base_url=slack.base_url)
        ts = post_approval(client)
        client.chat_update(channel="C0APPROVALS", ts=ts, text="Approved by <@U0BOB>", blocks=[])
        client.chat_postEphemeral(channel="C0APPROVALS", user="U0BOB", text="done")
    assert "[Approve] [Deny]" in printed[0]
    assert "updated 1x" in printed[1] and "Approved by @bob" in printed[1]
    assert "only visible to @bob" in printed[2]


def test_echo_reports_clicks(recorder: Recorder) -> None:
    printed: list[str] = []
    with SlackFake(interactions_url=recorder.url, printer=printed.append) as slack:
        client = WebClient(token=slack.bot_token, base_url=slack.base_url)
        slack.click(post_approval(client), "approve", "U0BOB")
    clicked = next(
        i for i, line in enumerate(printed) if "@bob clicked [Approve] (approve)" in line
    )
    assert "answered HTTP 200" in printed[clicked + 1]


def test_clear_forgets_state_but_keeps_serving(client: WebClient, fake: SlackFake) -> None:
    first = post_approval(client)
    fake.clear()
    assert fake.messages() == [] and fake.api_calls() == []
    assert float(post_approval(client)) > float(first)
