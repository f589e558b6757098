"""The local stack's control endpoint (development and test tool, loopback only).

Lets another process (the end-to-end tests, a person with curl) see what the Kubernetes
emulator received, reset that record, and mint OIDC tokens with chosen claims.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class ControlServer:
    def __init__(
        self,
        calls: Callable[[], list[Any]],
        clear_calls: Callable[[], None],
        mint: Callable[[dict[str, Any]], str],
    ) -> None:
        self._calls, self._clear, self._mint = calls, clear_calls, mint
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> ControlServer:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        control = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, status: int, body: Any) -> None:
                data = json.dumps(body, default=str).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                if self.path == "/kube/calls":
                    self._reply(200, [dataclasses.asdict(c) for c in control._calls()])
                else:
                    self._reply(404, {"error": "unknown path"})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path == "/kube/calls/clear":
                    control._clear()
                    self._reply(200, {"cleared": True})
                elif self.path == "/oidc/mint":
                    self._reply(200, {"token": control._mint(body)})
                else:
                    self._reply(404, {"error": "unknown path"})

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
