"""What the local Slack fake remembers: messages, ephemerals, modals, trigger ids, response URLs.

Development and test tool. Records are frozen snapshots; the store swaps in a new record on each
change and hands out deep copies, so a test holding a ``FakeMessage`` never sees it change under
it and cannot corrupt the fake by mutating its blocks. One lock guards everything: the fake is
hit from the HTTP server's threads and from the test thread at once.
"""

from __future__ import annotations

import copy
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class MessageVersion:
    """One state of a message: as posted, or after a ``chat.update`` / response_url replace."""

    text: str
    blocks: list[dict[str, Any]]
    attachments: list[dict[str, Any]]
    at: str  # the Slack-style ts at which this version was written
    source: str  # "chat.postMessage", "chat.update", "response_url"


@dataclass(frozen=True)
class FakeMessage:
    """A message in a channel, with its whole edit history in ``versions`` (oldest first)."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    attachments: list[dict[str, Any]]
    user: str
    bot_id: str | None
    app_id: str | None
    team: str
    thread_ts: str | None = None
    metadata: dict[str, Any] | None = None
    versions: tuple[MessageVersion, ...] = ()
    deleted: bool = False

    @property
    def edit_count(self) -> int:
        """How many times the message was changed after it was posted."""
        return max(len(self.versions) - 1, 0)

    def action_ids(self) -> list[str]:
        """The action ids of the interactive elements, in block order (what ``click`` accepts)."""
        return [
            aid for _, element in iter_elements(self.blocks) if (aid := element.get("action_id"))
        ]

    def to_slack(self) -> dict[str, Any]:
        """The message object as Slack returns it (``chat.postMessage``'s ``message``, payloads)."""
        message: dict[str, Any] = {
            "type": "message",
            "text": self.text,
            "user": self.user,
            "ts": self.ts,
            "team": self.team,
        }
        if self.bot_id:
            message["bot_id"] = self.bot_id
        if self.app_id:
            message["app_id"] = self.app_id
        if self.blocks:
            message["blocks"] = copy.deepcopy(self.blocks)
        if self.attachments:
            message["attachments"] = copy.deepcopy(self.attachments)
        if self.thread_ts:
            message["thread_ts"] = self.thread_ts
        if self.metadata:
            message["metadata"] = copy.deepcopy(self.metadata)
        if self.edit_count:
            message["edited"] = {"user": self.user, "ts": self.versions[-1].at}
        return message


@dataclass(frozen=True)
class FakeEphemeral:
    """A message only ``user`` sees: from ``chat.postEphemeral`` or an ephemeral response_url."""

    channel: str
    user: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None
    source: str  # "chat.postEphemeral" or "response_url"

    def to_slack(self) -> dict[str, Any]:
        """Slack-shaped message dict (for rendering)."""
        message: dict[str, Any] = {"type": "message", "text": self.text, "ts": self.ts}
        if self.blocks:
            message["blocks"] = copy.deepcopy(self.blocks)
        return message


ViewState = Literal["open", "closed", "submitted"]


@dataclass(frozen=True)
class FakeView:
    """A modal opened with ``views.open`` for ``user``; ``view`` is Slack's full view object."""

    id: str
    user: str
    trigger_id: str
    view: dict[str, Any]
    state: ViewState = "open"
    versions: tuple[dict[str, Any], ...] = ()
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def callback_id(self) -> str:
        """The app's ``callback_id`` for this modal (empty if none)."""
        return str(self.view.get("callback_id") or "")

    @property
    def private_metadata(self) -> str:
        """The app's ``private_metadata`` (empty if none)."""
        return str(self.view.get("private_metadata") or "")


@dataclass(frozen=True)
class Trigger:
    """A trigger id handed to the app in an interaction; ``views.open`` may use it once, soon."""

    id: str
    user: str
    issued_at: float  # time.monotonic()
    used: bool = False


@dataclass(frozen=True)
class ResponseTarget:
    """What a response_url acts on: the message (or ephemeral) that was clicked, and by whom."""

    token: str
    channel: str
    message_ts: str
    user: str
    is_ephemeral: bool
    uses: int = 0


@dataclass(frozen=True)
class ResponseUrlPost:
    """One POST the app made to a response_url, and what the fake did with it."""

    url: str
    body: dict[str, Any]
    channel: str
    message_ts: str
    user: str
    outcome: str  # "replaced", "deleted", "ephemeral", "in_channel" or an error code


def iter_elements(blocks: Any) -> list[tuple[str, dict[str, Any]]]:
    """(block_id, element) for each interactive element: actions, section accessory, input."""
    found: list[tuple[str, dict[str, Any]]] = []
    for block in blocks or []:
        if not isinstance(block, Mapping):
            continue
        block_id = str(block.get("block_id", ""))
        candidates: list[Any] = []
        if block.get("type") == "actions":
            candidates.extend(block.get("elements") or [])
        if isinstance(block.get("accessory"), Mapping):
            candidates.append(block["accessory"])
        if block.get("type") == "input" and isinstance(block.get("element"), Mapping):
            candidates.append(block["element"])
        found.extend(
            (block_id, e) for e in candidates if isinstance(e, dict) and e.get("action_id")
        )
    return found


def _random_id(prefix: str, length: int = 10) -> str:
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(length))


def fill_block_ids(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy with a ``block_id`` on every block and an ``action_id`` on every element.

    Slack generates the ones an app leaves out, and interaction payloads always carry them; an
    app that keys on them must cope with generated values, so the fake generates them too.
    """
    filled = copy.deepcopy(blocks)
    for block in filled:
        if not isinstance(block, dict):
            continue
        if not block.get("block_id"):
            block["block_id"] = _short_id()
        elements: list[Any] = (
            list(block.get("elements") or []) if block.get("type") == "actions" else []
        )
        elements.extend(e for e in (block.get("accessory"), block.get("element")) if e)
        for element in elements:
            interactive = isinstance(element, dict) and element.get("type") not in (None, "image")
            if interactive and not element.get("action_id"):
                element["action_id"] = _short_id()
    return filled


def _short_id() -> str:
    return "".join(secrets.choice("abcdefghijkmnopqrstuvwxyz0123456789") for _ in range(5))


class SlackStore:
    """Thread-safe memory of everything the fake was asked to do, with waits for tests."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.RLock())
        self._last_us = 0
        self.clear()

    def clear(self) -> None:
        """Forget everything recorded (ts stay increasing across a clear)."""
        with self._cond:
            self._messages: dict[str, FakeMessage] = {}
            self._ephemerals: list[FakeEphemeral] = []
            self._views: dict[str, FakeView] = {}
            self._triggers: dict[str, Trigger] = {}
            self._responses: dict[str, ResponseTarget] = {}
            self._response_posts: list[ResponseUrlPost] = []
            self._cond.notify_all()

    # -- ids --------------------------------------------------------------------------------

    def next_ts(self) -> str:
        """A Slack ``ts`` (seconds.microseconds), unique and increasing within a microsecond."""
        with self._cond:
            # Integer microseconds: a float near 1.7e9 cannot step by exactly 1e-6.
            self._last_us = max(time.time_ns() // 1000, self._last_us + 1)
            return f"{self._last_us // 1_000_000}.{self._last_us % 1_000_000:06d}"

    # -- messages ---------------------------------------------------------------------------

    def add_message(self, message: FakeMessage) -> FakeMessage:
        """Store a new message; returns a snapshot."""
        with self._cond:
            self._messages[message.ts] = message
            self._cond.notify_all()
            return copy.deepcopy(message)

    def get_message(self, ts: str) -> FakeMessage | None:
        """A snapshot of the message with this ts, or None."""
        with self._cond:
            message = self._messages.get(ts)
            return copy.deepcopy(message) if message else None

    def update_message(
        self, ts: str, change: Callable[[FakeMessage], FakeMessage]
    ) -> FakeMessage | None:
        """Atomically replace the message by ``change(old)``; None if there is no such message."""
        with self._cond:
            old = self._messages.get(ts)
            if old is None:
                return None
            new = change(old)
            self._messages[ts] = new
            self._cond.notify_all()
            return copy.deepcopy(new)

    def messages(self, channel: str | None = None) -> list[FakeMessage]:
        """Snapshots of stored messages in posting order, optionally of one channel id."""
        with self._cond:
            found = [m for m in self._messages.values() if channel is None or m.channel == channel]
            return copy.deepcopy(sorted(found, key=lambda m: float(m.ts)))

    # -- ephemerals -------------------------------------------------------------------------

    def add_ephemeral(self, ephemeral: FakeEphemeral) -> None:
        """Store an ephemeral message."""
        with self._cond:
            self._ephemerals.append(ephemeral)
            self._cond.notify_all()

    def ephemerals(self, user: str | None = None) -> list[FakeEphemeral]:
        """Snapshots of ephemeral messages, optionally only those shown to ``user``."""
        with self._cond:
            return copy.deepcopy([e for e in self._ephemerals if user is None or e.user == user])

    def get_ephemeral(self, ts: str) -> FakeEphemeral | None:
        """The ephemeral message with this ts, or None."""
        with self._cond:
            return copy.deepcopy(next((e for e in self._ephemerals if e.ts == ts), None))

    # -- views ------------------------------------------------------------------------------

    def new_view_id(self) -> str:
        """A fresh ``V...`` view id."""
        return _random_id("V")

    def put_view(self, view: FakeView) -> FakeView:
        """Store (or replace) a view; returns a snapshot."""
        with self._cond:
            self._views[view.id] = view
            self._cond.notify_all()
            return copy.deepcopy(view)

    def get_view(self, view_id: str) -> FakeView | None:
        """A snapshot of the view, or None."""
        with self._cond:
            view = self._views.get(view_id)
            return copy.deepcopy(view) if view else None

    def find_view(self, *, external_id: str) -> FakeView | None:
        """The view the app gave this ``external_id``, or None."""
        with self._cond:
            view = next(
                (v for v in self._views.values() if v.view.get("external_id") == external_id), None
            )
            return copy.deepcopy(view) if view else None

    def update_view(self, view_id: str, change: Callable[[FakeView], FakeView]) -> FakeView | None:
        """Atomically replace the view by ``change(old)``; None if there is no such view."""
        with self._cond:
            old = self._views.get(view_id)
            if old is None:
                return None
            new = change(old)
            self._views[view_id] = new
            self._cond.notify_all()
            return copy.deepcopy(new)

    def views(self) -> list[FakeView]:
        """Snapshots of all views, in opening order."""
        with self._cond:
            return copy.deepcopy(list(self._views.values()))

    # -- trigger ids ------------------------------------------------------------------------

    def issue_trigger(self, user: str) -> str:
        """A new trigger id for an interaction by ``user``."""
        trigger_id = (
            f"{secrets.randbelow(10**13):013d}.{secrets.randbelow(10**12):012d}."
            f"{secrets.token_hex(16)}"
        )
        with self._cond:
            self._triggers[trigger_id] = Trigger(trigger_id, user, time.monotonic())
        return trigger_id

    def use_trigger(self, trigger_id: str, ttl: float) -> tuple[Trigger | None, str | None]:
        """Consume a trigger id: (trigger, None) or (None, Slack error code)."""
        with self._cond:
            trigger = self._triggers.get(trigger_id)
            if trigger is None:
                return None, "invalid_trigger_id"
            if trigger.used:
                return None, "exchanged_trigger_id"
            if time.monotonic() - trigger.issued_at > ttl:
                return None, "expired_trigger_id"
            self._triggers[trigger_id] = replace(trigger, used=True)
            return trigger, None

    # -- response URLs ----------------------------------------------------------------------

    def issue_response_target(
        self, *, channel: str, message_ts: str, user: str, is_ephemeral: bool
    ) -> ResponseTarget:
        """Register a response_url token for a clicked message."""
        target = ResponseTarget(secrets.token_urlsafe(18), channel, message_ts, user, is_ephemeral)
        with self._cond:
            self._responses[target.token] = target
        return target

    def use_response_target(
        self, token: str, max_uses: int
    ) -> tuple[ResponseTarget | None, str | None]:
        """Count one use of a response_url: (target, None) or (None, error code)."""
        with self._cond:
            target = self._responses.get(token)
            if target is None:
                return None, "expired_url"
            if target.uses >= max_uses:
                return None, "used_url"
            target = replace(target, uses=target.uses + 1)
            self._responses[token] = target
            return target, None

    def add_response_post(self, post: ResponseUrlPost) -> None:
        """Record a response_url POST."""
        with self._cond:
            self._response_posts.append(post)
            self._cond.notify_all()

    def response_posts(self) -> list[ResponseUrlPost]:
        """Snapshots of all response_url POSTs, oldest first."""
        with self._cond:
            return copy.deepcopy(self._response_posts)

    # -- waiting ----------------------------------------------------------------------------

    def wait(self, probe: Callable[[], T | None], timeout: float, what: str) -> T:
        """Return ``probe()`` once it is not None; re-checks on every change to the store."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = probe()
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no {what} after {timeout:g} s")
                self._cond.wait(remaining)

    def notify(self) -> None:
        """Wake waiters (after a change made outside the store's own methods)."""
        with self._cond:
            self._cond.notify_all()
