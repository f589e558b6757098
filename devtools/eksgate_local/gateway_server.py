"""Serve the Chalice app on loopback the way API Gateway + Lambda would (local stack only).

``chalice local`` cannot match greedy ``{proxy+}`` routes, which the Kubernetes proxy needs.
Rather than a second code path, this server turns each HTTP request into the same REST API
proxy event API Gateway sends and calls the app's Lambda handler (``app(event, context)``):
routing, middleware and every route run exactly as deployed.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

API_GATEWAY_MAX_BODY = 10 * 1024 * 1024


class _Route:
    def __init__(self, template: str) -> None:
        self.template = template
        pattern = ""
        for part in template.strip("/").split("/") if template != "/" else []:
            if part.startswith("{") and part.endswith("+}"):
                pattern += f"/(?P<{part[1:-2]}>.+)"
            elif part.startswith("{") and part.endswith("}"):
                pattern += f"/(?P<{part[1:-1]}>[^/]+)"
            else:
                pattern += "/" + re.escape(part)
        self.regex = re.compile(f"^{pattern or '/'}$")
        # API Gateway prefers literal segments over variables, and variables over greedy ones;
        # a greedy route with more literal segments before it (/k8s/{cluster}/{proxy+}) wins
        # over a shorter one (/{proxy+}).
        literals = sum(1 for part in template.split("/") if part and not part.startswith("{"))
        self.rank = (template.count("+}"), -literals, template.count("{"), -len(template))


class LambdaContext:
    """The attributes of the Lambda context object that the app and powertools read."""

    def __init__(self, function_name: str = "eksgate-local", timeout_seconds: int = 29) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        )
        self.log_group_name = f"/aws/lambda/{function_name}"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def build_event(
    routes: list[_Route],
    method: str,
    raw_path: str,
    headers: list[tuple[str, str]],
    body: bytes,
    source_ip: str,
) -> dict[str, Any] | None:
    """The API Gateway REST proxy event for a request, or None when no route matches."""
    parts = urlsplit(raw_path)
    path = parts.path or "/"
    match_path = path.rstrip("/") if path != "/" else path
    for route in sorted(routes, key=lambda r: r.rank):
        found = route.regex.match(match_path)
        if found:
            break
    else:
        return None
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers:
        multi_headers.setdefault(name, []).append(value)
    query = parse_qsl(parts.query, keep_blank_values=True)
    multi_query: dict[str, list[str]] = {}
    for name, value in query:
        multi_query.setdefault(name, []).append(value)
    request_id = str(uuid.uuid4())
    return {
        "resource": route.template,
        "path": path,
        "httpMethod": method,
        "headers": {k: v[-1] for k, v in multi_headers.items()},
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": found.groupdict() or None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": route.template,
            "httpMethod": method,
            "path": f"/local{path}",
            "stage": "local",
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {
                "sourceIp": source_ip,
                "userAgent": multi_headers.get("User-Agent", [""])[-1],
            },
        },
        "body": base64.b64encode(body).decode() if body else None,
        "isBase64Encoded": bool(body),
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        tls: ssl.SSLContext | None,
    ) -> None:
        self.tls = tls
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = self.socket.accept()
        if self.tls:
            # The handshake happens in the handler thread, so a slow client cannot stall accept().
            sock = self.tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        with self._open_lock:
            self._open.add(sock)
        return sock, address

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_open_connections(self) -> None:
        """End kept-alive connections: a stopped gateway must not keep answering on them."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up or reject our CA are routine here


def _small_json(data: bytes) -> Any:
    """A JSON answer under 64 KiB, parsed; None for anything else."""
    if len(data) > 64 * 1024 or data[:1] != b"{":
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


class LocalApiGateway:
    """A threaded HTTP(S) server in front of a Chalice app object.

    API Gateway is HTTPS only, and kubectl sends exec-plugin credentials only over TLS, so the
    local stack passes ``tls`` (the local CA's server context); tests may serve plain HTTP.
    """

    def __init__(
        self, app: Any, host: str = "127.0.0.1", port: int = 0, tls: ssl.SSLContext | None = None
    ) -> None:
        self._app = app
        self._host = host
        self._routes = [_Route(path) for path in app.routes]
        self._server = _Server((host, port), self._handler_class(), tls)
        self._thread: threading.Thread | None = None
        self._answers: list[dict[str, Any]] = []
        self._answers_lock = threading.Lock()

    def answers(self) -> list[dict[str, Any]]:
        """What each client was answered, oldest first: method, path, status, the Audit-ID
        (the header; for ``/v1/exec``, the answer's ``audit_id``), and an error's reason and
        message: the client's side of the audit join. No other body is kept."""
        with self._answers_lock:
            return list(self._answers)

    def _remember(self, method: str, path: str, status: int, headers: dict, data: bytes) -> None:
        lower = {str(k).lower(): v for k, v in headers.items()}
        header = lower.get("audit-id", "")
        answer: dict[str, Any] = {
            "method": method,
            "path": urlsplit(path).path,
            "status": status,
            "audit_id": header[-1] if isinstance(header, list) else header,
        }
        body = _small_json(data) if status >= 400 or answer["path"].startswith("/v1/") else None
        if isinstance(body, dict):
            raw_details = body.get("details")
            details: dict[str, Any] = raw_details if isinstance(raw_details, dict) else {}
            answer["audit_id"] = answer["audit_id"] or str(
                body.get("audit_id") or details.get("audit_id") or ""
            )
            if status >= 400:
                answer["reason"] = str(body.get("reason") or body.get("code") or "")
                answer["message"] = str(body.get("message") or "")
        with self._answers_lock:
            self._answers.append(answer)

    @property
    def url(self) -> str:
        scheme = "https" if self._server.tls else "http"
        return f"{scheme}://{self._host}:{self._server.server_port}"

    def start(self) -> LocalApiGateway:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="local-gateway",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.close_open_connections()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> LocalApiGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        return self._app(event, LambdaContext())

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > API_GATEWAY_MAX_BODY:
                    self._reply(
                        413,
                        {"Content-Type": "application/json"},
                        b'{"message": "Request Too Long"}',
                    )
                    return
                body = self.rfile.read(length) if length else b""
                event = build_event(
                    gateway._routes,
                    self.command,
                    self.path,
                    list(self.headers.items()),
                    body,
                    self.client_address[0],
                )
                if event is None:
                    # What API Gateway answers for a path no route matches.
                    self._reply(
                        403,
                        {"Content-Type": "application/json"},
                        b'{"message": "Missing Authentication Token"}',
                    )
                    return
                result = gateway.invoke(event)
                payload = result.get("body") or ""
                data = (
                    base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
                )
                headers: dict[str, Any] = dict(result.get("headers") or {})
                for name, values in (result.get("multiValueHeaders") or {}).items():
                    headers[name] = values
                self._reply(result.get("statusCode", 200), headers, data)

            def _reply(self, status: int, headers: dict[str, Any], data: bytes) -> None:
                gateway._remember(self.command, self.path, status, headers, data)
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() in ("content-length", "connection", "transfer-encoding"):
                        continue
                    for item in value if isinstance(value, list) else [value]:
                        self.send_header(name, str(item))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

            def log_message(self, *args: Any) -> None:
                pass

        return Handler
