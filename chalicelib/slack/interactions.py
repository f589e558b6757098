"""Slack interaction requests: is it really Slack, and what was clicked.

The signature covers the raw body bytes, so the body is verified exactly as it arrived and
only then parsed; nothing re-serialises it in between (Slack's JSON escapes ``/`` and
non-ASCII, so a re-encoded body would no longer match).
"""

from __future__ import annotations

import hashlib
import json
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from slack_sdk.signature import Clock, SignatureVerifier

from chalicelib.errors import BadRequest, ServiceUnavailable, Unauthorized
from chalicelib.slack.messages import APPROVE_ACTION, DENY_ACTION, DENY_CALLBACK

# Slack's own recommendation (and slack_sdk's check): older requests may be replays.
MAX_AGE_SECONDS = 5 * 60
MAX_BODY_BYTES = 256 * 1024

APPROVE, DENY_CLICK, DENY_SUBMIT = "approve", "deny_click", "deny_submit"


@dataclass(frozen=True)
class Interaction:
    """One click or form submission, as the approvals core acts on it.

    ``interaction_key`` is a hash of the raw body: Slack's retries and any replay carry the
    same bytes, so it names the delivery, and the store uses it to act on it once.
    """

    kind: str  # approve | deny_click | deny_submit
    approval_id: str
    user_id: str
    interaction_key: str
    user_name: str = ""
    trigger_id: str | None = None
    response_url: str | None = None
    reason: str = ""
    channel: str | None = None
    message_ts: str | None = None


class _FixedClock(Clock):
    def __init__(self, now: float) -> None:
        self._now = now

    def now(self) -> float:
        return self._now


def verify_slack_request(
    signing_secret: str, headers: Mapping[str, str], body: bytes, now: float | None = None
) -> None:
    """Raise ``Unauthorized`` unless ``body`` was signed by Slack within the last 5 minutes.

    ``headers`` may use any capitalisation. A missing signing secret is a deployment error
    and refuses everything (``ServiceUnavailable``): an empty HMAC key would let anyone sign.
    """
    if not signing_secret or not signing_secret.strip():
        raise ServiceUnavailable(
            "the Slack signing secret is not configured, so Slack interactions cannot be "
            "verified; set it in the stage configuration"
        )
    lowered = {k.lower(): v for k, v in headers.items()}
    signature = lowered.get("x-slack-signature")
    timestamp = lowered.get("x-slack-request-timestamp")
    if not signature or not timestamp:
        raise Unauthorized(
            "missing X-Slack-Signature or X-Slack-Request-Timestamp: this endpoint only "
            "accepts requests signed by Slack"
        )
    if not timestamp.isascii() or not timestamp.isdigit():
        raise Unauthorized("X-Slack-Request-Timestamp must be a Unix time in seconds")
    at = time.time() if now is None else now
    if abs(at - int(timestamp)) > MAX_AGE_SECONDS:
        raise Unauthorized(
            "the Slack request timestamp is more than 5 minutes from now: a stale or replayed "
            "request (or a clock that is off) is refused"
        )
    if len(body) > MAX_BODY_BYTES:
        raise Unauthorized("the request body is too large to be a Slack interaction")
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise Unauthorized("the request body is not UTF-8, so it is not from Slack") from None
    verifier = SignatureVerifier(signing_secret, clock=_FixedClock(at))
    if not verifier.is_valid(body=body, timestamp=timestamp, signature=signature):
        raise Unauthorized(
            "the Slack request signature does not verify: the request was not signed with "
            "this app's signing secret (or was altered on the way)"
        )


def parse_interaction(body: bytes) -> Interaction:
    """The ``Interaction`` in a verified form body (``payload=<json>``); ``BadRequest`` for
    anything eksgate does not handle (other payload types, other buttons, other forms).
    """
    try:
        fields = urllib.parse.parse_qs(
            body.decode("utf-8"), keep_blank_values=True, strict_parsing=True
        )
        payload = json.loads(fields["payload"][0])
    except (UnicodeDecodeError, ValueError, KeyError, IndexError):
        raise BadRequest("a Slack interaction is a form with one field, payload=<JSON>") from None
    if not isinstance(payload, dict):
        raise BadRequest("the Slack interaction payload must be a JSON object")
    key = hashlib.sha256(body).hexdigest()[:32]
    user = _obj(payload.get("user"))
    user_id = _text(user.get("id"))
    if not user_id:
        raise BadRequest("the Slack interaction names no user")
    user_name = _text(user.get("username") or user.get("name"))
    kind = payload.get("type")
    if kind == "block_actions":
        return _block_action(payload, key, user_id, user_name)
    if kind == "view_submission":
        return _view_submission(payload, key, user_id, user_name)
    raise BadRequest(f"eksgate does not handle Slack interactions of type {str(kind)[:40]!r}")


def _block_action(payload: dict[str, Any], key: str, user_id: str, user_name: str) -> Interaction:
    actions = payload.get("actions")
    action = actions[0] if isinstance(actions, list) and actions else None
    if not isinstance(action, dict):
        raise BadRequest("the Slack block_actions payload has no action")
    action_id = action.get("action_id")
    kinds = {APPROVE_ACTION: APPROVE, DENY_ACTION: DENY_CLICK}
    if action_id not in kinds:
        raise BadRequest(f"eksgate has no button {str(action_id)[:64]!r}")
    container = _obj(payload.get("container"))
    channel = _obj(payload.get("channel"))
    message = _obj(payload.get("message"))
    return Interaction(
        kind=kinds[action_id],
        approval_id=_text(action.get("value")),
        user_id=user_id,
        interaction_key=key,
        user_name=user_name,
        trigger_id=_text(payload.get("trigger_id")) or None,
        response_url=_text(payload.get("response_url")) or None,
        channel=_text(channel.get("id") or container.get("channel_id")) or None,
        message_ts=_text(container.get("message_ts") or message.get("ts")) or None,
    )


def _view_submission(
    payload: dict[str, Any], key: str, user_id: str, user_name: str
) -> Interaction:
    view = _obj(payload.get("view"))
    if view.get("callback_id") != DENY_CALLBACK:
        raise BadRequest(f"eksgate has no form {str(view.get('callback_id'))[:64]!r}")
    state = _obj(view.get("state"))
    values = _obj(state.get("values"))
    block = _obj(values.get("reason"))
    entry = _obj(block.get("reason"))
    return Interaction(
        kind=DENY_SUBMIT,
        approval_id=_text(view.get("private_metadata")),
        user_id=user_id,
        interaction_key=key,
        user_name=user_name,
        trigger_id=_text(payload.get("trigger_id")) or None,
        reason=_text(entry.get("value")).strip(),
    )


def _obj(value: Any) -> dict[str, Any]:
    """A JSON object from the payload, or an empty one: missing and malformed read the same."""
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
