"""A local Slack fake: the Web API the app calls, plus a human (or a test) who clicks buttons.

Development and test tool, documented as such: production talks to Slack. It serves, on
loopback, the Slack Web API methods eksgate uses, reachable through slack_sdk with
``WebClient(token=fake.bot_token, base_url=fake.base_url)``; it records every message, update,
ephemeral message, modal and response_url call; and it clicks buttons and submits modals by
POSTing signed ``block_actions`` / ``view_submission`` payloads to the app's interactivity URL,
exactly as Slack does. It can also play Slack being down (``fail_next``, ``set_down``).

    with SlackFake(interactions_url=app_url + "/slack/interactions", echo=True) as slack:
        client = WebClient(token=slack.bot_token, base_url=slack.base_url)
        ...                                   # the app posts an approval request
        msg = slack.wait_for_message(lambda m: "approve" in m.action_ids())
        slack.click(msg.ts, "approve", "U0BOB")

Other processes (the demo CLI, a person with curl) drive a running fake over its loopback
control endpoints, which have no authentication and so are served only on loopback:
``GET /_fake/state``, ``POST /_fake/click`` ``{"message_ts", "action_id", "user_id"}`` and
``POST /_fake/submit_view`` ``{"view_id", "user_id", "values"}``. Permalinks point at the fake
too (``GET /archives/<channel>/p<ts>`` shows the message as text; ``GET /`` shows them all).
"""

from __future__ import annotations

import argparse
import ipaddress
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any, Literal, Self

from eksgate_local.slack_fake_api import ApiResponse, SlackWebApi, truthy
from eksgate_local.slack_fake_blockkit import validate_blocks
from eksgate_local.slack_fake_http import FakeServer, make_server
from eksgate_local.slack_fake_interactions import (
    Delivery,
    InteractionResult,
    SlackFakeError,
    block_actions_payload,
    build_delivery,
    client_side_errors,
    find_action,
    send,
    state_values,
    view_submission_payload,
)
from eksgate_local.slack_fake_render import render_message, render_view
from eksgate_local.slack_fake_store import (
    FakeEphemeral,
    FakeMessage,
    FakeView,
    MessageVersion,
    ResponseUrlPost,
    SlackStore,
    fill_block_ids,
    iter_elements,
)
from eksgate_local.slack_fake_workspace import Workspace, default_workspace

__all__ = [
    "ApiCall",
    "Delivery",
    "FakeEphemeral",
    "FakeMessage",
    "FakeView",
    "InteractionResult",
    "ResponseUrlPost",
    "SlackFake",
    "SlackFakeError",
]

DownMode = Literal["reset", "hang"]

# Slack lets a response_url be used five times (within 30 minutes).
RESPONSE_URL_MAX_USES = 5


@dataclass(frozen=True)
class ApiCall:
    """One Web API call the fake answered: method, decoded arguments and the ``ok``/``error``."""

    method: str
    args: dict[str, Any]
    status: int
    ok: bool
    error: str | None


@dataclass
class _Failure:
    remaining: int
    status: int
    error: str | None
    methods: frozenset[str] | None


class SlackFake:
    """A Slack workspace on loopback: Web API, recorded state, and clicks sent to the app."""

    def __init__(
        self,
        bot_token: str = "xoxb-local-fake",
        signing_secret: str = "local-fake-signing-secret",
        interactions_url: str | None = None,
        echo: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        workspace: Workspace | None = None,
        printer: Callable[[str], None] | None = None,
        verification_token: str = "local-fake-verification-token",
        trigger_ttl: float = 3.0,
        validate_blocks: bool = True,
        interaction_timeout: float = 10.0,
        control_endpoints: bool | None = None,
        ca_file: str | None = None,
    ) -> None:
        """Configure the fake; nothing listens until ``start()`` (or ``with``).

        ``echo=True`` prints each message, update, ephemeral, modal and click to stdout; pass
        ``printer`` to send those renderings elsewhere. ``trigger_ttl`` is how long a trigger id
        stays usable for ``views.open`` (3 s in Slack). ``validate_blocks`` rejects Block Kit
        that Slack would reject. ``interaction_timeout`` bounds how long ``click`` waits for the
        app (Slack gives up after 3 s; see ``InteractionResult.within_deadline``).
        ``control_endpoints`` serves the unauthenticated ``/_fake/...`` endpoints; by default
        only when ``host`` is a loopback address.
        """
        if not bot_token.startswith("xoxb-"):
            raise ValueError("bot_token must be a bot token (xoxb-...), as the app is given one")
        self.bot_token = bot_token
        self.signing_secret = signing_secret
        self.interactions_url = interactions_url
        self.ca_file = ca_file  # trust for an HTTPS interactions_url with a private CA
        self.verification_token = verification_token
        self.interaction_timeout = interaction_timeout
        self.workspace = workspace or default_workspace()
        self.host = host
        self._port = port
        self.control_endpoints = (
            _is_loopback(host) if control_endpoints is None else control_endpoints
        )
        if printer is None and echo:
            printer = _print_flush
        self._printer = printer
        self.store = SlackStore()
        self.api = SlackWebApi(
            self.workspace,
            self.store,
            bot_token=bot_token,
            root_url=lambda: self.url,
            trigger_ttl=trigger_ttl,
            validate=validate_blocks,
            listener=self._on_change if printer else None,
        )
        self._lock = threading.Lock()
        self._failures: list[_Failure] = []
        self._down: DownMode | None = None
        self._up = threading.Event()
        self._up.set()
        self._calls: list[ApiCall] = []
        self._results: list[InteractionResult] = []
        self._server: FakeServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> Self:
        """Start serving on ``host:port`` (port 0 picks a free one); returns self."""
        if self._server is not None:
            return self
        server = make_server(self.host, self._port, self)
        self._server = server
        self._port = server.server_address[1]
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="slack-fake",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port; hanging "down" requests are let go."""
        server, self._server = self._server, None
        if server is None:
            return
        self._up.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The listening port (known after ``start()``)."""
        return self._port

    @property
    def url(self) -> str:
        """Root URL of the fake, ending with ``/``."""
        if self._server is None:
            raise SlackFakeError(
                "the Slack fake is not started; call start() or use it in a with block"
            )
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self._port}/"

    @property
    def base_url(self) -> str:
        """The Web API base URL for ``WebClient(base_url=...)``, ending with ``/api/``."""
        return self.url + "api/"

    # -- state ------------------------------------------------------------------------------

    def _channel_id(self, channel: str) -> str:
        conversation = self.api.conversation(channel)
        if conversation is None:
            raise SlackFakeError(f"no channel {channel!r} in the fake workspace")
        return conversation.id

    def messages(self, channel: str | None = None) -> list[FakeMessage]:
        """Messages in posting order (with their update history), optionally of one channel.

        ``channel`` is an id (``C0APPROVALS``), a name (``eksgate-approvals``, ``#...``) or a
        user id for the bot's DMs with that user.
        """
        return self.store.messages(None if channel is None else self._channel_id(channel))

    def message(self, ts: str) -> FakeMessage:
        """The message with this ``ts``; raises ``SlackFakeError`` if there is none."""
        message = self.store.get_message(ts)
        if message is None:
            raise SlackFakeError(f"no message with ts {ts}")
        return message

    def ephemerals(self, user: str | None = None) -> list[FakeEphemeral]:
        """Ephemeral messages (``chat.postEphemeral`` and ephemeral response_url replies)."""
        return self.store.ephemerals(user)

    def views(self) -> list[FakeView]:
        """Modals opened with ``views.open``, in order, with their state and versions."""
        return self.store.views()

    def view(self, view_id: str) -> FakeView:
        """The modal with this id; raises ``SlackFakeError`` if there is none."""
        view = self.store.get_view(view_id)
        if view is None:
            raise SlackFakeError(f"no view {view_id}")
        return view

    def response_url_posts(self) -> list[ResponseUrlPost]:
        """Every POST the app made to a response_url, with what it did."""
        return self.store.response_posts()

    def api_calls(self, method: str | None = None) -> list[ApiCall]:
        """Web API calls answered so far, optionally of one method."""
        with self._lock:
            return [c for c in self._calls if method is None or c.method == method]

    def interactions(self) -> list[InteractionResult]:
        """Interactions the fake delivered to the app (clicks, submissions, replays)."""
        with self._lock:
            return list(self._results)

    def clear(self) -> None:
        """Forget all recorded state (messages, views, calls ...) but keep serving."""
        self.store.clear()
        with self._lock:
            self._calls.clear()
            self._results.clear()
            self._failures.clear()

    def wait_for_message(
        self,
        predicate: Callable[[FakeMessage], bool] | None = None,
        timeout: float = 5.0,
        *,
        channel: str | None = None,
    ) -> FakeMessage:
        """The first message (in posting order) for which ``predicate`` holds, once there is one.

        Updates count: ``wait_for_message(lambda m: m.ts == ts and m.edit_count > 0)`` waits
        for the app to update a message. Raises ``TimeoutError`` after ``timeout`` seconds.
        """
        channel_id = None if channel is None else self._channel_id(channel)

        def probe() -> FakeMessage | None:
            for message in self.store.messages(channel_id):
                if predicate is None or predicate(message):
                    return message
            return None

        return self.store.wait(probe, timeout, "matching Slack message")

    def wait_for_ephemeral(
        self, predicate: Callable[[FakeEphemeral], bool] | None = None, timeout: float = 5.0
    ) -> FakeEphemeral:
        """The first ephemeral message for which ``predicate`` holds; ``TimeoutError`` if none."""

        def probe() -> FakeEphemeral | None:
            return next(
                (e for e in self.store.ephemerals() if predicate is None or predicate(e)), None
            )

        return self.store.wait(probe, timeout, "matching ephemeral message")

    def wait_for_view(
        self, predicate: Callable[[FakeView], bool] | None = None, timeout: float = 5.0
    ) -> FakeView:
        """The first modal for which ``predicate`` holds; ``TimeoutError`` if none in time."""

        def probe() -> FakeView | None:
            return next((v for v in self.store.views() if predicate is None or predicate(v)), None)

        return self.store.wait(probe, timeout, "matching modal")

    # -- failure modes ----------------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        *,
        status: int = 500,
        error: str | None = None,
        methods: Iterable[str] | None = None,
    ) -> None:
        """Make the next ``n`` matching requests fail.

        ``status`` 5xx answers ``{"ok": false, "error": "fatal_error"}``; 429 answers
        ``ratelimited`` with ``Retry-After: 1``; 200 with ``error`` answers that Slack error
        code. ``methods`` limits the failure to those Web API methods (``"response_url"``
        names the response_url endpoint); by default every request counts.
        """
        if status == 200 and not error:
            raise ValueError("status 200 needs an error code, e.g. error='channel_not_found'")
        with self._lock:
            self._failures.append(
                _Failure(n, status, error, frozenset(methods) if methods is not None else None)
            )

    def set_down(self, down: bool = True, *, mode: DownMode = "reset") -> None:
        """Play Slack unreachable: ``reset`` drops each connection without an answer, ``hang``
        holds it open (until ``set_down(False)`` or ``stop()``) so the caller's timeout fires.
        """
        with self._lock:
            self._down = mode if down else None
        if down and mode == "hang":
            self._up.clear()
        else:
            self._up.set()

    @property
    def down_mode(self) -> DownMode | None:
        """How the fake is playing unreachable (``reset``/``hang``), or None when it is up."""
        return self._down

    def wait_until_up(self) -> None:
        """Block until ``set_down(False)`` or ``stop()`` (used by hanging requests)."""
        self._up.wait()

    def _take_failure(self, name: str) -> ApiResponse | None:
        with self._lock:
            for failure in self._failures:
                if failure.methods is not None and name not in failure.methods:
                    continue
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failures.remove(failure)
                if failure.status == 429:
                    return ApiResponse(
                        429,
                        {"ok": False, "error": failure.error or "ratelimited"},
                        {"Retry-After": "1"},
                    )
                return ApiResponse(
                    failure.status, {"ok": False, "error": failure.error or "fatal_error"}
                )
        return None

    # -- interactions -----------------------------------------------------------------------

    def _target(self, interactions_url: str | None, signing_secret: str | None) -> tuple[str, str]:
        url = interactions_url or self.interactions_url
        if not url:
            raise SlackFakeError(
                "no interactions URL: pass interactions_url= here or to SlackFake(...)"
            )
        return url, signing_secret or self.signing_secret

    def _member(self, user_id: str) -> dict[str, Any]:
        user = self.workspace.user(user_id)
        if user is None or user.deleted:
            known = ", ".join(u.id for u in self.workspace.users if not u.deleted)
            raise SlackFakeError(
                f"no active user {user_id!r} in the fake workspace (known: {known})"
            )
        return user.to_slack(self.workspace.team_id)

    def _team(self) -> dict[str, str]:
        return {"id": self.workspace.team_id, "domain": self.workspace.domain}

    def _deliver(self, delivery: Delivery, timeout: float | None, what: str) -> InteractionResult:
        # Announce before sending: the app's own Slack calls (an update, a modal) print while
        # the request is in flight, and should read as the consequence of this line.
        self._print(f">>> {what}")
        result = send(
            delivery,
            timeout=self.interaction_timeout if timeout is None else timeout,
            ca_file=self.ca_file,
        )
        with self._lock:
            self._results.append(result)
        self._print(f"<<< the app answered HTTP {result.status} in {result.elapsed:.2f} s")
        return result

    def click(
        self,
        message_ts: str,
        action_id: str,
        user_id: str,
        *,
        interactions_url: str | None = None,
        signing_secret: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
        timestamp: int | None = None,
        timeout: float | None = None,
        allow_stale: bool = False,
    ) -> InteractionResult:
        """Click the button ``action_id`` of a message as ``user_id``; returns the app's answer.

        Sends a signed ``block_actions`` payload with a fresh trigger id (valid for one
        ``views.open`` within ``trigger_ttl``) and a response_url served by this fake.
        ``timestamp`` overrides the signing time (to test stale requests); ``retry_num`` adds
        Slack's retry headers. ``allow_stale`` clicks a button that an update has since removed,
        as a person whose Slack client still shows the old version can. Raises
        ``SlackFakeError`` for an unknown message, button or user, ``DeliveryError`` if the app
        does not answer.
        """
        url, secret = self._target(interactions_url, signing_secret)
        user = self._member(user_id)
        message = self.store.get_message(message_ts)
        ephemeral = None if message is not None else self.store.get_ephemeral(message_ts)
        if message is not None and not message.deleted:
            channel_id, blocks, slack_message = message.channel, message.blocks, message.to_slack()
        elif ephemeral is not None:
            if ephemeral.user != user_id:
                raise SlackFakeError(
                    f"ephemeral message {message_ts} is only visible to {ephemeral.user}"
                )
            channel_id, blocks, slack_message = ephemeral.channel, ephemeral.blocks, None
        else:
            raise SlackFakeError(f"no message with ts {message_ts} to click on")
        found = find_action(blocks, action_id)
        if found is None and allow_stale and message is not None:
            for version in reversed(message.versions):
                found = find_action(version.blocks, action_id)
                if found is not None:
                    # The payload carries the message as that person's client shows it.
                    slack_message = {**message.to_slack(), "text": version.text}
                    slack_message["blocks"] = version.blocks
                    break
        if found is None:
            ids = [str(e.get("action_id")) for _, e in iter_elements(blocks)]
            raise SlackFakeError(f"message {message_ts} has no action {action_id!r} (it has {ids})")
        block_id, element = found
        conversation = self.api.conversation(channel_id)
        channel_name = (
            "directmessage" if conversation is None or conversation.dm_user else conversation.name
        )
        target = self.store.issue_response_target(
            channel=channel_id,
            message_ts=message_ts,
            user=user_id,
            is_ephemeral=ephemeral is not None,
        )
        payload = block_actions_payload(
            team=self._team(),
            app_id=self.workspace.app_id,
            verification_token=self.verification_token,
            user=user,
            channel={"id": channel_id, "name": channel_name},
            message=slack_message,
            message_ts=message_ts,
            is_ephemeral=ephemeral is not None,
            block_id=block_id,
            element=element,
            trigger_id=self.store.issue_trigger(user_id),
            response_url=f"{self.url}actions/{self.workspace.team_id}/"
            f"{int(time.time() * 1000)}/{target.token}",
        )
        delivery = build_delivery(
            url,
            payload,
            secret,
            timestamp=timestamp,
            retry_num=retry_num,
            retry_reason=retry_reason,
        )
        label = (
            element.get("text", {}).get("text", action_id)
            if isinstance(element.get("text"), dict)
            else action_id
        )
        return self._deliver(
            delivery, timeout, f"@{user['name']} clicked [{label}] ({action_id}) on {message_ts}"
        )

    def submit_view(
        self,
        view_id: str,
        user_id: str | None = None,
        values: Mapping[str, Any] | None = None,
        *,
        interactions_url: str | None = None,
        signing_secret: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
        timestamp: int | None = None,
        timeout: float | None = None,
        client_validation: bool = True,
    ) -> InteractionResult:
        """Submit an open modal as ``user_id`` (default: the user it was opened for).

        ``values`` fills its inputs, keyed by action id or block id (see ``state_values``):
        ``fake.submit_view(view.id, "U0BOB", {"reason": "not during the freeze"})``. With
        ``client_validation`` an empty required input raises ``SlackFakeError``, because Slack's
        client would not send it. The app's answer is applied as Slack would: empty 200 closes
        the modal, ``response_action`` ``errors``/``update``/``push``/``clear`` do what they say.
        """
        url, secret = self._target(interactions_url, signing_secret)
        view = self.store.get_view(view_id)
        if view is None:
            raise SlackFakeError(f"no view {view_id} (views: {[v.id for v in self.store.views()]})")
        if view.state != "open":
            raise SlackFakeError(f"view {view_id} is {view.state}, not open")
        user_id = user_id or view.user
        if user_id != view.user:
            raise SlackFakeError(f"view {view_id} is only shown to {view.user}, not {user_id}")
        user = self._member(user_id)
        blocks = view.view.get("blocks") or []
        state = state_values(blocks, values or {})
        if client_validation:
            problems = client_side_errors(blocks, state)
            if problems:
                raise SlackFakeError(
                    f"Slack would not let {user_id} submit view {view_id}: {problems}"
                )
        payload = view_submission_payload(
            team=self._team(),
            app_id=self.workspace.app_id,
            verification_token=self.verification_token,
            user=user,
            view=view.view,
            state=state,
            trigger_id=self.store.issue_trigger(user_id),
        )
        delivery = build_delivery(
            url,
            payload,
            secret,
            timestamp=timestamp,
            retry_num=retry_num,
            retry_reason=retry_reason,
        )
        result = self._deliver(delivery, timeout, f"@{user['name']} submitted view {view_id}")
        self._apply_view_response(view, result)
        return result

    def _apply_view_response(self, view: FakeView, result: InteractionResult) -> None:
        if result.status != 200:
            return  # Slack shows "We had some trouble connecting" and leaves the modal open.
        try:
            answer = result.json()
        except ValueError:
            answer = None
        action = answer.get("response_action") if isinstance(answer, dict) else None
        if action == "errors":
            errors = {str(k): str(v) for k, v in (answer.get("errors") or {}).items()}
            self.store.update_view(view.id, lambda v: replace(v, errors=errors))
        elif action in ("update", "push") and isinstance(answer.get("view"), dict):
            full = self.api.full_view(answer["view"], view_id=view.id, previous=view.view)
            if action == "update":
                self.store.update_view(
                    view.id,
                    lambda v: replace(v, view=full, versions=(*v.versions, full), errors={}),
                )
            else:
                pushed_id = self.store.new_view_id()
                pushed = {
                    **full,
                    "id": pushed_id,
                    "previous_view_id": view.id,
                    "root_view_id": view.id,
                }
                self.store.put_view(
                    FakeView(pushed_id, view.user, view.trigger_id, pushed, versions=(pushed,))
                )
        else:
            # An empty 200 (or "clear") closes the modal: the submission went through.
            self.store.update_view(view.id, lambda v: replace(v, state="submitted"))

    def replay(
        self,
        sent: Delivery | InteractionResult,
        *,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
        timeout: float | None = None,
    ) -> InteractionResult:
        """Send an earlier interaction again, byte for byte (same timestamp and signature).

        With ``retry_num`` it carries Slack's ``X-Slack-Retry-Num``/``-Reason`` headers, as a
        retry does; without, it is a plain replay, as an attacker holding a captured request
        would send it.
        """
        delivery = sent.delivery if isinstance(sent, InteractionResult) else sent
        if retry_num is not None:
            delivery = delivery.with_retry(retry_num, retry_reason)
        return self._deliver(delivery, timeout, f"replayed {delivery.payload.get('type')}")

    # -- HTTP side --------------------------------------------------------------------------

    def _record_call(self, method: str, args: Mapping[str, Any], response: ApiResponse) -> None:
        with self._lock:
            self._calls.append(
                ApiCall(
                    method,
                    dict(args),
                    response.status,
                    bool(response.body.get("ok")),
                    response.body.get("error"),
                )
            )

    def handle_api(self, method: str, args: Mapping[str, Any], token: str | None) -> ApiResponse:
        """Answer a Web API call (after any injected failure), and record it."""
        response = self._take_failure(method) or self.api.call(method, args, token)
        self._record_call(method, args, response)
        return response

    def handle_response_url(self, path: str, token: str, body: Any) -> ApiResponse:
        """Apply a POST to a response_url: replace/delete the original, or post a new message."""
        failure = self._take_failure("response_url")
        if failure is not None:
            return failure
        if not isinstance(body, dict):
            return ApiResponse(400, {"ok": False, "error": "invalid_payload"})
        target, error = self.store.use_response_target(token, RESPONSE_URL_MAX_USES)
        if target is None:
            return ApiResponse(404, {"ok": False, "error": error or "expired_url"})
        url = self.url.rstrip("/") + path

        def record(outcome: str) -> None:
            self.store.add_response_post(
                ResponseUrlPost(url, body, target.channel, target.message_ts, target.user, outcome)
            )

        if truthy(body, "delete_original"):
            self.store.update_message(target.message_ts, lambda m: replace(m, deleted=True))
            record("deleted")
            return ApiResponse(200, {"ok": True})
        text = str(body.get("text") or "")
        blocks = body.get("blocks") or []
        if not text and not blocks:
            record("no_text")
            return ApiResponse(400, {"ok": False, "error": "no_text"})
        errors = validate_blocks(blocks) if self.api.validate else []
        if errors:
            record("invalid_blocks")
            return ApiResponse(
                400,
                {"ok": False, "error": "invalid_blocks", "response_metadata": {"messages": errors}},
            )
        blocks = fill_block_ids(blocks)
        ts = self.store.next_ts()
        if truthy(body, "replace_original") and not target.is_ephemeral:
            version = MessageVersion(text, blocks, [], ts, "response_url")
            updated = self.store.update_message(
                target.message_ts,
                lambda m: replace(m, text=text, blocks=blocks, versions=(*m.versions, version)),
            )
            record("replaced")
            if updated is not None:
                self._on_change("update", updated)
        elif body.get("response_type") == "in_channel":
            ws = self.workspace
            message = FakeMessage(
                channel=target.channel,
                ts=ts,
                text=text,
                blocks=blocks,
                attachments=[],
                user=ws.bot_user.id,
                bot_id=ws.bot_id,
                app_id=ws.app_id,
                team=ws.team_id,
                thread_ts=body.get("thread_ts"),
                versions=(MessageVersion(text, blocks, [], ts, "response_url"),),
            )
            self._on_change("message", self.store.add_message(message))
            record("in_channel")
        else:
            # Ephemeral is the default, and a "replaced" ephemeral is a new ephemeral for us.
            ephemeral = FakeEphemeral(
                target.channel, target.user, ts, text, blocks, None, "response_url"
            )
            self.store.add_ephemeral(ephemeral)
            self._on_change("ephemeral", ephemeral)
            record("replaced" if truthy(body, "replace_original") else "ephemeral")
        return ApiResponse(200, {"ok": True})

    def control(self, action: str, body: Mapping[str, Any]) -> tuple[int, Any]:
        """The loopback control endpoints (``/_fake/...``) for other processes and people."""
        if action == "state":
            return 200, {
                "messages": [
                    {
                        **m.to_slack(),
                        "channel": m.channel,
                        "edit_count": m.edit_count,
                        "deleted": m.deleted,
                    }
                    for m in self.messages()
                ],
                "ephemerals": [
                    {**e.to_slack(), "channel": e.channel, "user": e.user}
                    for e in self.ephemerals()
                ],
                "views": [
                    {"id": v.id, "user": v.user, "state": v.state, "view": v.view}
                    for v in self.views()
                ],
            }
        try:
            if action == "click":
                result = self.click(
                    str(body["message_ts"]), str(body["action_id"]), str(body["user_id"])
                )
            elif action == "submit_view":
                result = self.submit_view(
                    str(body["view_id"]), body.get("user_id"), body.get("values") or {}
                )
            else:
                return 404, {"error": f"unknown control action {action!r}"}
        except KeyError as missing:
            return 400, {"error": f"missing field {missing}"}
        except SlackFakeError as error:
            return 409, {"error": str(error)}
        return 200, {"status": result.status, "body": result.text}

    # -- echo -------------------------------------------------------------------------------

    def _names(self) -> dict[str, str]:
        ws = self.workspace
        names = {u.id: u.name for u in ws.all_users()}
        names.update({g.id: g.handle for g in ws.usergroups})
        names.update({c.id: c.name for c in ws.channels})
        return names

    def _print(self, text: str) -> None:
        if self._printer is not None:
            self._printer(text)

    def _on_change(self, kind: str, record: Any) -> None:
        if self._printer is None:
            return
        names = self._names()
        if isinstance(record, FakeMessage):
            shown = {
                **record.to_slack(),
                "channel": "#" + names.get(record.channel, record.channel),
                "edit_count": record.edit_count,
            }
            self._print(render_message(shown, names=names))
        elif isinstance(record, FakeEphemeral):
            title = f"only visible to @{names.get(record.user, record.user)} · ts {record.ts}"
            self._print(render_message(record.to_slack(), title=title, names=names))
        elif isinstance(record, FakeView):
            self._print(
                render_view(record.view, names=names)
                + f"\n(shown to @{names.get(record.user, record.user)})"
            )

    def render(self, ts: str) -> str:
        """The message with this ts as the terminal shows it."""
        message = self.message(ts)
        names = self._names()
        shown = {
            **message.to_slack(),
            "channel": "#" + names.get(message.channel, message.channel),
            "edit_count": message.edit_count,
        }
        return render_message(shown, names=names)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _print_flush(text: str) -> None:
    print(text, flush=True)


def main(argv: list[str] | None = None) -> None:
    """Serve the fake alone, printing what it receives: ``python -m eksgate_local.slack_fake``."""

    parser = argparse.ArgumentParser(description="Local Slack fake (development and test tool)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--bot-token", default="xoxb-local-fake")
    parser.add_argument("--signing-secret", default="local-fake-signing-secret")
    parser.add_argument("--interactions-url", help="the app's Slack interactivity endpoint")
    options = parser.parse_args(argv)
    with SlackFake(
        options.bot_token,
        options.signing_secret,
        options.interactions_url,
        echo=True,
        host=options.host,
        port=options.port,
    ) as fake:
        print(f"Slack fake serving the Web API at {fake.base_url} (Ctrl-C to stop)", flush=True)
        print(
            f'click: curl -d \'{{"message_ts": ..., "action_id": ..., "user_id": "U0BOB"}}\' '
            f"{fake.url}_fake/click",
            flush=True,
        )
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
