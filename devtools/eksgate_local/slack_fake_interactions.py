"""Interaction requests as Slack sends them to an app: payloads, signing, delivery, replay.

Development and test tool. When someone clicks a button or submits a modal, Slack POSTs
``application/x-www-form-urlencoded`` ``payload=<JSON>`` to the app's interactivity URL and
signs it: ``X-Slack-Signature: v0=hex(HMAC-SHA256(signing_secret, "v0:{timestamp}:{body}"))``
with ``X-Slack-Request-Timestamp``. The JSON is encoded the way Slack's own encoder writes it
(compact, ``\\/`` for ``/``, non-ASCII as ``\\uXXXX``), so an app that re-serialises the body
before checking the signature fails here as it would against Slack.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from eksgate_local.slack_fake_store import iter_elements

# Slack shows the user an error if the app does not answer an interaction within 3 seconds.
SLACK_ACK_DEADLINE_SECONDS = 3.0


class SlackFakeError(Exception):
    """A misuse of the fake (unknown message, button, user or view) or a failed delivery."""


class DeliveryError(SlackFakeError):
    """The app's interactivity URL could not be reached or did not answer in time."""


def sign(signing_secret: str, timestamp: str | int, body: bytes | str) -> str:
    """Slack's request signature: ``v0=`` + hex HMAC-SHA256 over ``v0:{timestamp}:{body}``."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    base = b"v0:" + str(timestamp).encode("ascii") + b":" + raw
    return "v0=" + hmac.new(signing_secret.encode("utf-8"), base, hashlib.sha256).hexdigest()


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """The form body Slack sends: ``payload=`` + the URL-encoded JSON of the payload."""
    # Slack's encoder escapes "/" inside strings; "/" only ever occurs inside JSON strings.
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/")
    return urllib.parse.urlencode({"payload": text}).encode("ascii")


def decode_payload(body: bytes | str) -> dict[str, Any]:
    """The payload dict from a form body made by ``encode_payload`` (or by Slack)."""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    values = urllib.parse.parse_qs(text, keep_blank_values=True)
    payload: dict[str, Any] = json.loads(values["payload"][0])
    return payload


@dataclass(frozen=True)
class Delivery:
    """One signed request, byte for byte, so it can be sent again (a replay or a retry)."""

    url: str
    body: bytes
    headers: tuple[tuple[str, str], ...]

    @property
    def payload(self) -> dict[str, Any]:
        """The decoded interaction payload."""
        return decode_payload(self.body)

    def header(self, name: str) -> str | None:
        """A header value by case-insensitive name."""
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def with_retry(self, retry_num: int, retry_reason: str = "http_timeout") -> Delivery:
        """The same bytes and signature, marked as Slack's retry number ``retry_num``."""
        kept = tuple((k, v) for k, v in self.headers if not k.lower().startswith("x-slack-retry-"))
        return replace(
            self,
            headers=(
                *kept,
                ("X-Slack-Retry-Num", str(retry_num)),
                ("X-Slack-Retry-Reason", retry_reason),
            ),
        )


@dataclass(frozen=True)
class InteractionResult:
    """The app's answer to one delivered interaction."""

    status: int
    body: bytes
    headers: Mapping[str, str]
    elapsed: float
    delivery: Delivery = field(repr=False)

    @property
    def text(self) -> str:
        """The response body as text."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The response body parsed as JSON (None when it is empty)."""
        return json.loads(self.body) if self.body.strip() else None

    @property
    def within_deadline(self) -> bool:
        """Whether the app answered within Slack's 3-second acknowledgement deadline."""
        return self.elapsed <= SLACK_ACK_DEADLINE_SECONDS


def build_delivery(
    url: str,
    payload: Mapping[str, Any],
    signing_secret: str,
    *,
    timestamp: int | None = None,
    retry_num: int | None = None,
    retry_reason: str = "http_timeout",
) -> Delivery:
    """Encode and sign ``payload`` as Slack would POST it to ``url``."""
    body = encode_payload(payload)
    ts = str(int(time.time()) if timestamp is None else timestamp)
    delivery = Delivery(
        url=url,
        body=body,
        headers=(
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("User-Agent", "Slackbot 1.0 (+https://api.slack.com/robots)"),
            ("X-Slack-Request-Timestamp", ts),
            ("X-Slack-Signature", sign(signing_secret, ts, body)),
        ),
    )
    return delivery if retry_num is None else delivery.with_retry(retry_num, retry_reason)


def send(delivery: Delivery, *, timeout: float, ca_file: str | None = None) -> InteractionResult:
    """POST a delivery and return the app's answer, whatever its status code.

    ``ca_file`` trusts a private CA (the local stack's HTTPS gateway), as Slack trusts public
    ones. Raises ``DeliveryError`` when nothing answers (connection refused, reset, timeout).
    """
    request = urllib.request.Request(
        delivery.url, data=delivery.body, headers=dict(delivery.headers), method="POST"
    )
    # No proxies: an HTTP(S)_PROXY in the environment must not swallow loopback requests.
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if ca_file:
        handlers.append(
            urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=ca_file))
        )
    opener = urllib.request.build_opener(*handlers)
    started = time.monotonic()
    try:
        with opener.open(request, timeout=timeout) as response:
            status, body, headers = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        status, body, headers = error.code, error.read(), dict(error.headers or {})
    except (urllib.error.URLError, OSError) as error:
        raise DeliveryError(
            f"could not deliver the interaction to {delivery.url}: {error}; "
            "is the app running and is the fake's interactions_url right?"
        ) from error
    return InteractionResult(status, body, headers, time.monotonic() - started, delivery)


def user_ref(user: Mapping[str, Any], team_id: str) -> dict[str, Any]:
    """The ``user`` object of an interaction payload."""
    return {"id": user["id"], "username": user["name"], "name": user["name"], "team_id": team_id}


def find_action(blocks: Sequence[Any], action_id: str) -> tuple[str, dict[str, Any]] | None:
    """(block_id, element) of the interactive element with ``action_id``, or None."""
    return next(((b, e) for b, e in iter_elements(blocks) if e.get("action_id") == action_id), None)


def block_actions_payload(
    *,
    team: Mapping[str, str],
    app_id: str,
    verification_token: str,
    user: Mapping[str, Any],
    channel: Mapping[str, str],
    message: Mapping[str, Any] | None,
    message_ts: str,
    is_ephemeral: bool,
    block_id: str,
    element: Mapping[str, Any],
    trigger_id: str,
    response_url: str,
) -> dict[str, Any]:
    """A ``block_actions`` payload for a click on ``element`` (a button) in a message."""
    action: dict[str, Any] = {
        "action_id": element["action_id"],
        "block_id": block_id,
        "text": element.get("text"),
        "type": element.get("type", "button"),
        "action_ts": f"{time.time():.6f}",
    }
    for key in ("value", "style", "url"):
        if key in element:
            action[key] = element[key]
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": user_ref(user, team["id"]),
        "api_app_id": app_id,
        "token": verification_token,
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel["id"],
            "is_ephemeral": is_ephemeral,
        },
        "trigger_id": trigger_id,
        "team": dict(team),
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": dict(channel),
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [action],
    }
    # Slack leaves the message out for ephemeral messages: the app never stored them.
    if message is not None:
        payload["message"] = dict(message)
    return payload


def state_values(blocks: Sequence[Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """Slack's ``view.state.values`` for the input blocks of a modal, filled from ``values``.

    ``values`` is keyed by action id or block id; a value is a string (a ``plain_text_input``),
    a dict merged into the element state (``{"selected_option": ...}``), or, under a block id,
    ``{action_id: value}``. Inputs not mentioned are present with no value, as in Slack.
    Raises ``SlackFakeError`` for a key that names no input of the view.
    """
    state: dict[str, Any] = {}
    used: set[str] = set()
    for block in blocks:
        if not isinstance(block, Mapping) or block.get("type") != "input":
            continue
        element = block.get("element") or {}
        block_id, action_id = str(block.get("block_id")), str(element.get("action_id"))
        kind = element.get("type", "plain_text_input")
        raw: Any = None
        if block_id in values:
            used.add(block_id)
            raw = values[block_id]
            if isinstance(raw, Mapping) and action_id in raw:
                raw = raw[action_id]
        elif action_id in values:
            used.add(action_id)
            raw = values[action_id]
        if isinstance(raw, Mapping):
            entry = {"type": kind, **raw}
        else:
            entry = {"type": kind, "value": raw}
        state[block_id] = {action_id: entry}
    unknown = sorted(set(values) - used)
    if unknown:
        known = sorted({*state, *(a for s in state.values() for a in s)})
        raise SlackFakeError(f"no input {unknown} in the view; its block and action ids: {known}")
    return state


def client_side_errors(blocks: Sequence[Any], state: Mapping[str, Any]) -> dict[str, str]:
    """What Slack's client would refuse before sending a submission (required, length limits).

    Keyed by block id, like ``response_action: errors``. A real user cannot submit such a
    form, so the fake does not either unless told to skip this check.
    """
    errors: dict[str, str] = {}
    for block in blocks:
        if not isinstance(block, Mapping) or block.get("type") != "input":
            continue
        element = block.get("element") or {}
        entry = state.get(str(block.get("block_id")), {}).get(str(element.get("action_id")), {})
        if element.get("type", "plain_text_input") != "plain_text_input":
            continue
        value = entry.get("value") or ""
        if not value.strip():
            if not block.get("optional"):
                errors[str(block.get("block_id"))] = "Please complete this required field."
            continue
        min_length, max_length = element.get("min_length"), element.get("max_length")
        if isinstance(min_length, int) and len(value) < min_length:
            errors[str(block.get("block_id"))] = f"Must be at least {min_length} characters."
        if isinstance(max_length, int) and len(value) > max_length:
            errors[str(block.get("block_id"))] = f"Must be at most {max_length} characters."
    return errors


def view_submission_payload(
    *,
    team: Mapping[str, str],
    app_id: str,
    verification_token: str,
    user: Mapping[str, Any],
    view: Mapping[str, Any],
    state: Mapping[str, Any],
    trigger_id: str,
) -> dict[str, Any]:
    """A ``view_submission`` payload: the stored view with ``state.values`` filled in."""
    submitted = dict(view)
    submitted["state"] = {"values": dict(state)}
    return {
        "type": "view_submission",
        "team": dict(team),
        "user": user_ref(user, team["id"]),
        "api_app_id": app_id,
        "token": verification_token,
        "trigger_id": trigger_id,
        "view": submitted,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
