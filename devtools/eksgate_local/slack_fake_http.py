"""The HTTP side of the local Slack fake: routing, request decoding, dropped connections.

Development and test tool. Routes ``/api/<method>`` (Slack Web API), ``/actions/...``
(response_url), ``/archives/<channel>/p<ts>`` (permalinks, as text), ``/`` (all messages, as
text) and the loopback-only ``/_fake/...`` control endpoints to a ``SlackFake``; everything that
decides what to answer lives there, not here.
"""

from __future__ import annotations

import json
import re
import socket
import urllib.parse
from collections.abc import Mapping
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eksgate_local.slack_fake import SlackFake

_PERMALINK = re.compile(r"^/archives/([^/]+)/p(\d{7,})$")
_RESPONSE_URL = re.compile(r"^/actions/([^/]+)/(\d+)/([A-Za-z0-9_-]+)$")


class FakeServer(ThreadingHTTPServer):
    """The fake's HTTP server: one daemon thread per request, a deep accept backlog."""

    daemon_threads = True
    # The default backlog of 5 drops connections when an app fans out calls at once, and a
    # dropped SYN costs the caller a one-second retransmit.
    request_queue_size = 128


class FakeServer6(FakeServer):
    """``FakeServer`` on an IPv6 address (``::1``)."""

    address_family = socket.AF_INET6


def make_server(host: str, port: int, fake: SlackFake) -> FakeServer:
    """A threading HTTP server for ``fake`` on ``host:port`` (IPv6 when host has a colon)."""
    server_class = FakeServer6 if ":" in host else FakeServer
    return server_class((host, port), make_handler(fake))


def _single(values: Mapping[str, list[str]]) -> dict[str, str]:
    return {k: v[-1] for k, v in values.items()}


def parse_request_args(query: str, content_type: str, body: bytes) -> dict[str, Any]:
    """Web API arguments from the query string and a JSON, form or multipart body.

    slack_sdk sends JSON for methods carrying blocks or views and a form otherwise; other
    clients send structured arguments (``blocks``, ``view``) as JSON strings inside a form.
    Raises ``ValueError`` for a body that does not parse.
    """
    args: dict[str, Any] = _single(urllib.parse.parse_qs(query, keep_blank_values=True))
    kind = content_type.split(";")[0].strip().lower()
    if not body:
        return args
    if kind == "application/json":
        decoded = json.loads(body.decode("utf-8"))
        if not isinstance(decoded, dict):
            raise ValueError("JSON body must be an object")
        args.update(decoded)
    elif kind == "multipart/form-data":
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body
        )
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name:
                payload = part.get_payload(decode=True)
                raw = payload if isinstance(payload, bytes) else b""
                args[str(name)] = raw.decode("utf-8", errors="replace")
    else:
        args.update(_single(urllib.parse.parse_qs(body.decode("utf-8"), keep_blank_values=True)))
    return args


def make_handler(fake: SlackFake) -> type[BaseHTTPRequestHandler]:
    """The request handler class serving ``fake``."""

    class Handler(BaseHTTPRequestHandler):
        server_version = "SlackFake/1.0"
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            # Request lines would drown the rendered messages; api_calls() has the record.
            pass

        def do_GET(self) -> None:
            self._dispatch()

        def do_POST(self) -> None:
            self._dispatch()

        def _send(
            self,
            status: int,
            body: bytes,
            content_type: str,
            headers: Mapping[str, str] | None = None,
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
            self._send(
                status, json.dumps(body).encode("utf-8"), "application/json; charset=utf-8", headers
            )

        def _text(self, status: int, text: str) -> None:
            self._send(status, text.encode("utf-8"), "text/plain; charset=utf-8")

        def _dispatch(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            mode = fake.down_mode
            if mode is not None:
                if mode == "hang":
                    fake.wait_until_up()
                # Leave without a status line: the client sees the connection dropped.
                self.close_connection = True
                return
            split = urllib.parse.urlsplit(self.path)
            path = split.path
            if path.startswith("/api/"):
                self._api(path[len("/api/") :], split.query, body)
            elif (match := _RESPONSE_URL.match(path)) and self.command == "POST":
                try:
                    payload = json.loads(body.decode("utf-8") or "null")
                except ValueError:
                    payload = None
                response = fake.handle_response_url(path, match.group(3), payload)
                self._json(response.status, response.body, response.headers)
            elif path.startswith("/_fake/") and fake.control_endpoints:
                try:
                    control_body = json.loads(body.decode("utf-8")) if body else {}
                except ValueError:
                    self._json(400, {"error": "body must be JSON"})
                    return
                status, answer = fake.control(path[len("/_fake/") :], control_body)
                self._json(status, answer)
            elif (match := _PERMALINK.match(path)) and self.command == "GET":
                digits = match.group(2)
                message = fake.store.get_message(f"{digits[:-6]}.{digits[-6:]}")
                if message is None or message.channel != match.group(1):
                    self._text(404, "message not found\n")
                else:
                    self._text(200, fake.render(message.ts) + "\n")
            elif path == "/" and self.command == "GET":
                shown = [fake.render(m.ts) for m in fake.messages() if not m.deleted]
                self._text(200, "\n\n".join(shown) + "\n" if shown else "no messages yet\n")
            else:
                self._json(404, {"ok": False, "error": "not_found"})

        def _api(self, method: str, query: str, body: bytes) -> None:
            try:
                args = parse_request_args(query, self.headers.get("Content-Type", ""), body)
            except (ValueError, UnicodeDecodeError):
                self._json(200, {"ok": False, "error": "invalid_json"})
                return
            authorization = self.headers.get("Authorization", "")
            token = (
                authorization[len("Bearer ") :].strip()
                if authorization.startswith("Bearer ")
                else None
            )
            # Slack also takes the token as an argument; the header wins when both are sent.
            token = token or args.pop("token", None)
            args.pop("token", None)
            response = fake.handle_api(method, args, token)
            self._json(response.status, response.body, response.headers)

    return Handler
