"""Serve the Chalice app on loopback the way API Gateway + Lambda would (local stack only).

``chalice local`` cannot match greedy ``{proxy+}`` routes, which the Kubernetes proxy needs.
Rather than a second code path, this server turns each HTTP request into the proxy event API
Gateway sends and calls the app's Lambda handler (``app(event, context)``): routing, middleware
and every route run exactly as deployed. By default it is the event of the packaged stack's
front door, an HTTP API with payload format 1.0 and a ``$default`` stage; ``front_door="rest"``
gives the REST API's (``chalice deploy``), so tests cover the app under both.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

API_GATEWAY_MAX_BODY = 10 * 1024 * 1024
HTTP_API = "http"
REST_API = "rest"
# What each kind of API answers, itself, a request none of its routes takes.
NO_ROUTE_ANSWERS = {
    HTTP_API: (404, b'{"message":"Not Found"}'),
    REST_API: (403, b'{"message":"Missing Authentication Token"}'),
}
# The stage in a REST API's URL (Chalice's default, /api/); an HTTP API's $default has none.
REST_STAGE = "api"
ACCOUNT_ID = "123456789012"
API_ID = "eksgatelocal"


class Route:
    """One path the app declares, with its methods: an HTTP API route key per method."""

    def __init__(self, template: str, methods: Iterable[str]) -> None:
        self.template = template
        self.methods = frozenset(methods)
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


def app_routes(app: Any) -> list[Route]:
    """The routes of a Chalice app, with the methods each declares."""
    return [Route(path, entries) for path, entries in app.routes.items()]


@dataclass(frozen=True)
class LocalRequest:
    """An HTTP request as the local gateway received it."""

    method: str
    target: str  # path and query, as sent
    headers: list[tuple[str, str]]  # as sent, repeats kept
    body: bytes
    source_ip: str
    protocol: str = "HTTP/1.1"


class LambdaContext:
    """The attributes of the Lambda context object that the app and powertools read."""

    def __init__(self, function_name: str = "eksgate-local", timeout_seconds: int = 29) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:{function_name}"
        )
        self.log_group_name = f"/aws/lambda/{function_name}"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def select_route(
    routes: list[Route], method: str, path: str, front_door: str
) -> tuple[Route, dict[str, str]] | None:
    """The route API Gateway gives a request, with its path parameters; None when it answers
    the request itself.

    Both prefer the most specific path. An HTTP API matches method and path together (a route
    key), so a method one path lacks can still reach ``/{proxy+}``; a REST API finds the
    resource by path first, and a method that resource lacks goes no further.
    """
    match_path = path.rstrip("/") or "/"
    candidates = [r for r in routes if front_door == REST_API or method in r.methods]
    for route in sorted(candidates, key=lambda r: r.rank):
        found = route.regex.match(match_path)
        if found:
            return (route, found.groupdict()) if method in route.methods else None
    return None


def _resource_id(route: Route) -> str:
    """A REST API's id for a resource (an HTTP API sends null): stable, like the real one."""
    return hashlib.sha256(route.template.encode()).hexdigest()[:6]


def _check_front_door(front_door: str) -> None:
    if front_door not in NO_ROUTE_ANSWERS:
        raise ValueError(f"front_door must be {HTTP_API!r} or {REST_API!r}, not {front_door!r}")


def _grouped(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    return grouped


def build_event(
    routes: list[Route], request: LocalRequest, front_door: str = HTTP_API
) -> dict[str, Any] | None:
    """The Lambda proxy event API Gateway sends for ``request``; None when no route takes it.

    ``front_door`` is ``"http"`` (an HTTP API, payload format 1.0, stage ``$default``: what the
    packaged stack deploys) or ``"rest"`` (a REST API, stage ``api``: what ``chalice deploy``
    makes). The two events differ where API Gateway's do: ``version``, header names (an HTTP
    API lower-cases them), the stage, the stage prefix of ``requestContext.path``, and
    ``resourceId``.
    """
    _check_front_door(front_door)
    parts = urlsplit(request.target)
    path = parts.path or "/"
    selected = select_route(routes, request.method, path, front_door)
    if selected is None:
        return None
    route, path_parameters = selected
    http_api = front_door == HTTP_API
    headers = _grouped((name.lower() if http_api else name, v) for name, v in request.headers)
    lowered = {name.lower(): values[-1] for name, values in headers.items()}
    domain = urlsplit("//" + lowered.get("host", "")).hostname or "localhost"
    query = _grouped(parse_qsl(parts.query, keep_blank_values=True))
    request_id = str(uuid.uuid4())
    now = time.time()
    event: dict[str, Any] = {
        "resource": route.template,
        "path": path,
        "httpMethod": request.method,
        "headers": {name: values[-1] for name, values in headers.items()},
        "multiValueHeaders": headers,
        "queryStringParameters": {name: values[-1] for name, values in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": path_parameters or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": domain,
            "domainPrefix": domain.split(".")[0],
            "extendedRequestId": request_id,
            "httpMethod": request.method,
            "identity": {"sourceIp": request.source_ip, "userAgent": lowered.get("user-agent", "")},
            "path": path if http_api else f"/{REST_STAGE}{path}",
            "protocol": request.protocol,
            "requestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "requestTimeEpoch": int(now * 1000),
            "resourceId": None if http_api else _resource_id(route),
            "resourcePath": route.template,  # what Chalice dispatches on
            "stage": "$default" if http_api else REST_STAGE,
        },
        # Base64 whatever the content type: what API Gateway does for binary bodies
        # (protobuf); the app decodes either way.
        "body": base64.b64encode(request.body).decode() if request.body else None,
        "isBase64Encoded": bool(request.body),
    }
    return {"version": "1.0", **event} if http_api else event


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
    ``front_door`` chooses the API whose events and own answers it gives (see build_event).
    """

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
        front_door: str = HTTP_API,
    ) -> None:
        _check_front_door(front_door)
        self._app = app
        self._host = host
        self.front_door = front_door
        self._routes = app_routes(app)
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
                request = LocalRequest(
                    self.command,
                    self.path,
                    list(self.headers.items()),
                    body,
                    self.client_address[0],
                    self.request_version,
                )
                event = build_event(gateway._routes, request, gateway.front_door)
                if event is None:  # API Gateway answers this itself; the function never runs
                    status, answer = NO_ROUTE_ANSWERS[gateway.front_door]
                    self._reply(status, {"Content-Type": "application/json"}, answer)
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
