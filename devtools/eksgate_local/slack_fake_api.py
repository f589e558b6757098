"""The Slack Web API methods the eksgate app calls, answered from a fake workspace.

Development and test tool: production talks to https://slack.com/api/. Each method takes the
decoded arguments (form or JSON, strings or native values) and returns what Slack would: HTTP
200 with ``{"ok": true, ...}``, or ``{"ok": false, "error": "<code>"}`` with Slack's own error
codes (``channel_not_found``, ``user_not_found`` for ``users.info`` but ``users_not_found`` for
``users.lookupByEmail``, ``not_authed`` without a token, ``invalid_auth`` with a wrong one ...),
so the app's error handling is exercised against the codes it will really see.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from eksgate_local.slack_fake_blockkit import validate_blocks, validate_view
from eksgate_local.slack_fake_store import (
    FakeEphemeral,
    FakeMessage,
    FakeView,
    MessageVersion,
    SlackStore,
    fill_block_ids,
)
from eksgate_local.slack_fake_workspace import FakeChannel, Workspace


@dataclass(frozen=True)
class ApiResponse:
    """An HTTP answer of the fake Web API."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


class ApiError(Exception):
    """A Slack error answer (``ok: false``), raised inside a method and turned into JSON."""

    def __init__(self, code: str, messages: list[str] | None = None, status: int = 200) -> None:
        super().__init__(code)
        self.code = code
        self.messages = messages or []
        self.status = status


@dataclass(frozen=True)
class Conversation:
    """A resolved ``channel`` argument: a workspace channel or a direct message with a user."""

    id: str
    name: str
    channel: FakeChannel | None = None
    dm_user: str | None = None


# Called with ("message" | "update" | "ephemeral" | "view", record) after each change.
Listener = Callable[[str, Any], None]


def _optional_str(args: Mapping[str, Any], name: str) -> str | None:
    value = args.get(name)
    if value is None or value == "":
        return None
    return str(value)


def _required_str(args: Mapping[str, Any], name: str) -> str:
    value = _optional_str(args, name)
    if value is None:
        raise ApiError("invalid_arguments", [f"[ERROR] missing required field: {name}"])
    return value


def truthy(args: Mapping[str, Any], name: str) -> bool:
    """A boolean argument as Slack reads it: true, 1, "1" or "true"."""
    return args.get(name) in (True, 1, "1", "true", "True")


def _json_arg(args: Mapping[str, Any], name: str, error: str) -> Any:
    """A structured argument: native from a JSON body, or a JSON string from a form body."""
    value = args.get(name)
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ApiError(error, [f"[ERROR] {name} is not valid JSON: {exc.msg}"]) from exc
    return value


class SlackWebApi:
    """Slack Web API methods over a ``Workspace`` (read-only) and a ``SlackStore`` (state)."""

    def __init__(
        self,
        workspace: Workspace,
        store: SlackStore,
        *,
        bot_token: str,
        root_url: Callable[[], str],
        trigger_ttl: float = 3.0,
        validate: bool = True,
        listener: Listener | None = None,
    ) -> None:
        self.workspace = workspace
        self.store = store
        self.bot_token = bot_token
        self._root_url = root_url
        self.trigger_ttl = trigger_ttl
        self.validate = validate
        self._listener = listener
        self._methods: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
            "auth.test": self.auth_test,
            "chat.postMessage": self.chat_post_message,
            "chat.update": self.chat_update,
            "chat.postEphemeral": self.chat_post_ephemeral,
            "chat.getPermalink": self.chat_get_permalink,
            "views.open": self.views_open,
            "views.update": self.views_update,
            "users.info": self.users_info,
            "users.lookupByEmail": self.users_lookup_by_email,
            "usergroups.users.list": self.usergroups_users_list,
            "usergroups.list": self.usergroups_list,
            "conversations.info": self.conversations_info,
        }

    @property
    def method_names(self) -> list[str]:
        """The Web API methods this fake answers."""
        return sorted(self._methods)

    def call(self, method: str, args: Mapping[str, Any], token: str | None) -> ApiResponse:
        """Answer one Web API call, as Slack would (authentication first, then the method)."""
        handler = self._methods.get(method)
        if handler is None:
            return ApiResponse(404, {"ok": False, "error": "unknown_method", "req_method": method})
        if not token:
            return ApiResponse(200, {"ok": False, "error": "not_authed"})
        if token != self.bot_token:
            return ApiResponse(200, {"ok": False, "error": "invalid_auth"})
        try:
            return ApiResponse(200, {"ok": True, **handler(args)})
        except ApiError as error:
            body: dict[str, Any] = {"ok": False, "error": error.code}
            if error.messages:
                body["response_metadata"] = {"messages": error.messages}
            return ApiResponse(error.status, body)

    def _emit(self, kind: str, record: Any) -> None:
        if self._listener is not None:
            self._listener(kind, record)

    # -- helpers ----------------------------------------------------------------------------

    def conversation(self, ref: str) -> Conversation | None:
        """Resolve a ``channel`` argument: channel id/name, a user id (DM) or a ``D...`` id."""
        channel = self.workspace.channel(ref)
        if channel is not None:
            return Conversation(channel.id, channel.name, channel=channel)
        # Posting to a user id opens (or reuses) the bot's DM with that user, as Slack does.
        user_id = "U" + ref[1:] if ref.startswith("D") else ref
        user = self.workspace.user(user_id)
        if user is not None and not user.is_bot and not user.deleted:
            return Conversation("D" + user.id[1:], user.name, dm_user=user.id)
        return None

    def _writable(self, ref: str) -> Conversation:
        conversation = self.conversation(ref)
        if conversation is None:
            raise ApiError("channel_not_found")
        if conversation.channel is not None:
            if conversation.channel.is_archived:
                raise ApiError("is_archived")
            if not conversation.channel.is_member:
                raise ApiError("not_in_channel")
        return conversation

    def _content(
        self, args: Mapping[str, Any]
    ) -> tuple[str | None, list[dict[str, Any]] | None, list[dict[str, Any]] | None]:
        """(text, blocks, attachments) as given; None where the argument was left out."""
        text = str(args["text"]) if args.get("text") is not None else None
        blocks = _json_arg(args, "blocks", "invalid_blocks_format")
        attachments = _json_arg(args, "attachments", "invalid_attachments")
        if blocks is not None:
            if not isinstance(blocks, list):
                raise ApiError(
                    "invalid_blocks_format", ["[ERROR] must be an array [json-pointer:/blocks]"]
                )
            if self.validate:
                errors = validate_blocks(blocks)
                if errors:
                    raise ApiError("invalid_blocks", errors)
            blocks = fill_block_ids(blocks)
        if attachments is not None and not isinstance(attachments, list):
            raise ApiError("invalid_attachments")
        return text, blocks, attachments

    def _user_record(self, user_id: str) -> dict[str, Any]:
        user = self.workspace.user(user_id)
        if user is None:
            raise ApiError("user_not_found")
        return user.to_slack(self.workspace.team_id)

    def full_view(
        self, view: Mapping[str, Any], *, view_id: str, previous: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """Slack's full view object for a view the app sent (ids filled, fresh hash)."""
        ws = self.workspace
        return {
            "id": view_id,
            "team_id": ws.team_id,
            "type": view.get("type", "modal"),
            "blocks": fill_block_ids(list(view.get("blocks") or [])),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "title": view.get("title"),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "close": view.get("close"),
            "submit": view.get("submit"),
            "previous_view_id": previous.get("previous_view_id") if previous else None,
            "root_view_id": view_id,
            "app_id": ws.app_id,
            "external_id": view.get("external_id", ""),
            "app_installed_team_id": ws.team_id,
            "bot_id": ws.bot_id,
        }

    def _view_arg(self, args: Mapping[str, Any]) -> dict[str, Any]:
        if args.get("view") in (None, ""):
            raise ApiError("invalid_arguments", ["[ERROR] missing required field: view"])
        view = _json_arg(args, "view", "invalid_arguments")
        if not isinstance(view, dict):
            raise ApiError("invalid_arguments", ["[ERROR] must be an object [json-pointer:/view]"])
        errors = validate_view(view) if self.validate else []
        if errors:
            raise ApiError("invalid_arguments", errors)
        return view

    # -- methods ----------------------------------------------------------------------------

    def auth_test(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """``auth.test``: who the bot token belongs to."""
        ws = self.workspace
        return {
            "url": f"https://{ws.domain}.slack.com/",
            "team": ws.team_name,
            "user": ws.bot_user.name,
            "team_id": ws.team_id,
            "user_id": ws.bot_user.id,
            "bot_id": ws.bot_id,
            "is_enterprise_install": False,
        }

    def chat_post_message(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """``chat.postMessage``: store and return a new bot message."""
        conversation = self._writable(_required_str(args, "channel"))
        text, blocks, attachments = self._content(args)
        if not text and not blocks and not attachments:
            raise ApiError("no_text")
        ws = self.workspace
        ts = self.store.next_ts()
        metadata = _json_arg(args, "metadata", "invalid_metadata_format")
        message = FakeMessage(
            channel=conversation.id,
            ts=ts,
            text=text or "",
            blocks=blocks or [],
            attachments=attachments or [],
            user=ws.bot_user.id,
            bot_id=ws.bot_id,
            app_id=ws.app_id,
            team=ws.team_id,
            thread_ts=_optional_str(args, "thread_ts"),
            metadata=metadata if isinstance(metadata, dict) else None,
            versions=(
                MessageVersion(text or "", blocks or [], attachments or [], ts, "chat.postMessage"),
            ),
        )
        stored = self.store.add_message(message)
        self._emit("message", stored)
        return {"channel": conversation.id, "ts": ts, "message": stored.to_slack()}

    def chat_update(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """``chat.update``: replace text/blocks of a bot message; left-out fields are kept."""
        conversation = self.conversation(_required_str(args, "channel"))
        ts = _required_str(args, "ts")
        if conversation is None:
            raise ApiError("channel_not_found")
        text, blocks, attachments = self._content(args)
        if text is None and blocks is None and attachments is None:
            raise ApiError("no_text")
        current = self.store.get_message(ts)
        if current is None or current.deleted or current.channel != conversation.id:
            raise ApiError("message_not_found")
        if current.user != self.workspace.bot_user.id:
            raise ApiError("cant_update_message")
        edited_at = self.store.next_ts()

        def change(old: FakeMessage) -> FakeMessage:
            new_text = old.text if text is None else text
            new_blocks = old.blocks if blocks is None else blocks
            new_attachments = old.attachments if attachments is None else attachments
            version = MessageVersion(
                new_text, new_blocks, new_attachments, edited_at, "chat.update"
            )
            return replace(
                old,
                text=new_text,
                blocks=new_blocks,
                attachments=new_attachments,
                versions=(*old.versions, version),
            )

        updated = self.store.update_message(ts, change)
        if updated is None:
            raise ApiError("message_not_found")
        self._emit("update", updated)
        return {
            "channel": conversation.id,
            "ts": ts,
            "text": updated.text,
            "message": updated.to_slack(),
        }

    def chat_post_ephemeral(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """``chat.postEphemeral``: a message only one user sees."""
        conversation = self._writable(_required_str(args, "channel"))
        user_id = _required_str(args, "user")
        user = self.workspace.user(user_id)
        if user is None or user.deleted:
            raise ApiError("user_not_found")
        text, blocks, _ = self._content(args)
        if not text and not blocks:
            raise ApiError("no_text")
        ephemeral = FakeEphemeral(
            channel=conversation.id,
            user=user_id,
            ts=self.store.next_ts(),
            text=text or "",
            blocks=blocks or [],
            thread_ts=_optional_str(args, "thread_ts"),
            source="chat.postEphemeral",
        )
        self.store.add_ephemeral(ephemeral)
        self._emit("ephemeral", ephemeral)
        return {"message_ts": ephemeral.ts}

    def chat_get_permalink(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """``chat.getPermalink``: a link to the message (served by the fake as text)."""
        conversation = self.conversation(_required_str(args, "channel"))
        ts = _required_str(args, "message_ts")
        if conversation is None:
            raise ApiError("channel_not_found")
        message = self.store.get_message(ts)
        if message is None or message.deleted or message.channel != conversation.id:
            raise ApiError("message_not_found")
        permalink = f"{self._root_url()}archives/{conversation.id}/p{ts.replace('.', '')}"
        return {"channel": conversation.id, "permalink": permalink}

    def views_open(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """``views.open``: open a modal for the user whose click produced ``trigger_id``."""
        trigger_id = _required_str(args, "trigger_id")
        view = self._view_arg(args)
        trigger, error = self.store.use_trigger(trigger_id, self.trigger_ttl)
        if trigger is None:
            raise ApiError(error or "invalid_trigger_id")
        view_id = self.store.new_view_id()
        full = self.full_view(view, view_id=view_id, previous=None)
        stored = self.store.put_view(
            FakeView(
                id=view_id, user=trigger.user, trigger_id=trigger_id, view=full, versions=(full,)
            )
        )
        self._emit("view", stored)
        return {"view": stored.view}

    def views_update(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """``views.update``: replace an open modal, by ``view_id`` or ``external_id``."""
        view_id, external_id = _optional_str(args, "view_id"), _optional_str(args, "external_id")
        if view_id is None and external_id is None:
            raise ApiError("invalid_arguments", ["[ERROR] missing required field: view_id"])
        view = self._view_arg(args)
        found = (
            self.store.get_view(view_id)
            if view_id is not None
            else self.store.find_view(external_id=str(external_id))
        )
        if found is None or found.state != "open":
            raise ApiError("not_found")
        expected_hash = _optional_str(args, "hash")
        if expected_hash is not None and expected_hash != found.view.get("hash"):
            raise ApiError("hash_conflict")
        full = self.full_view(view, view_id=found.id, previous=found.view)

        def change(old: FakeView) -> FakeView:
            return replace(old, view=full, versions=(*old.versions, full), errors={})

        updated = self.store.update_view(found.id, change)
        if updated is None:
            raise ApiError("not_found")
        self._emit("view", updated)
        return {"view": updated.view}

    def users_info(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """``users.info``: a member by id (deactivated members too, with ``deleted: true``)."""
        return {"user": self._user_record(_required_str(args, "user"))}

    def users_lookup_by_email(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """``users.lookupByEmail``: an active member by email."""
        user = self.workspace.user_by_email(_required_str(args, "email"))
        if user is None:
            raise ApiError("users_not_found")
        return {"user": user.to_slack(self.workspace.team_id)}

    def usergroups_users_list(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """``usergroups.users.list``: the member ids of a user group."""
        group = self.workspace.usergroup(_required_str(args, "usergroup"))
        if group is None:
            raise ApiError("no_such_subteam")
        return {"users": list(group.users)}

    def usergroups_list(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """``usergroups.list``: all user groups (members only with ``include_users``)."""
        include_users, include_count = truthy(args, "include_users"), truthy(args, "include_count")
        return {
            "usergroups": [
                g.to_slack(
                    self.workspace.team_id, include_users=include_users, include_count=include_count
                )
                for g in self.workspace.usergroups
            ]
        }

    def conversations_info(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """``conversations.info``: a channel, or the bot's DM with a user."""
        conversation = self.conversation(_required_str(args, "channel"))
        if conversation is None:
            raise ApiError("channel_not_found")
        if conversation.channel is not None:
            return {"channel": conversation.channel.to_slack()}
        return {
            "channel": {
                "id": conversation.id,
                "created": 1_700_000_000,
                "is_im": True,
                "is_org_shared": False,
                "user": conversation.dm_user,
                "is_user_deleted": False,
                "priority": 0,
            }
        }
