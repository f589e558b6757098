"""The HTTPS request handler of the Kubernetes API emulator (a development and test tool).

:class:`EmulatorServer` is a threading HTTPS server; its handler authenticates each request,
routes it (discovery, OpenAPI index, resources and their subresources), negotiates the
representation, streams watches and followed logs with chunked encoding, answers every
error with a kube ``Status`` and records each call. :class:`~.emulator.KubeEmulator` owns the
state it serves.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import sys
import threading
import urllib.parse
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import yaml

from . import protobuf
from .api import is_dry_run, parse_list_options, strip_type_meta
from .auth import bearer_token
from .discovery import AGGREGATED_CONTENT_TYPE, VERSION_INFO, ResourceInfo
from .errors import ApiError, bad_request, failure_status, method_not_allowed
from .exec import serve_exec
from .negotiation import OutputFormat, negotiate_discovery_format, negotiate_resource_format
from .records import CallRecord
from .streams import StreamingMixin, query_flag, query_one
from .tables import partial_object_metadata, to_table

if TYPE_CHECKING:  # the emulator imports this module; annotations only
    from .emulator import KubeEmulator

log = logging.getLogger(__name__)

Object = dict[str, Any]

MAX_BODY_BYTES = 3 * 1024 * 1024  # kube-apiserver's request size limit
_HEALTH_PATHS = frozenset({"/healthz", "/livez", "/readyz"})
_STREAM_ERRORS = (
    BrokenPipeError,
    ConnectionResetError,
    ConnectionAbortedError,
    ssl.SSLError,
    socket.timeout,
)


@dataclass
class _Route:
    """What a resource URL addresses."""

    info: ResourceInfo
    namespace: str | None
    name: str | None
    subresource: str | None
    watch_prefix: bool


def _not_found_path() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")


class EmulatorServer(ThreadingHTTPServer):
    """Threading HTTPS server that tracks connections so stop() can close them."""

    daemon_threads = False  # server_close() joins handler threads
    block_on_close = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], emulator: KubeEmulator, context: ssl.SSLContext
    ) -> None:
        self.emulator = emulator
        self.ssl_context = context
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        # Handshake later, in the handler thread, so a slow client cannot stall accept().
        tls = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return tls, addr

    def track(self, conn: socket.socket, add: bool) -> None:
        with self._connections_lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def close_connections(self) -> None:
        """Unblock handler threads waiting on idle keep-alive connections."""
        with self._connections_lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up or reject our CA are routine; anything else is worth a log line.
        if isinstance(sys.exc_info()[1], OSError):  # includes ssl.SSLError and timeouts
            log.debug("connection from %s ended with an error", client_address, exc_info=True)
        else:
            log.exception("unexpected error serving %s", client_address)


class _Handler(StreamingMixin, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120  # idle keep-alive connections are closed after this
    server: EmulatorServer

    # ----- connection plumbing -----------------------------------------------------------

    def setup(self) -> None:
        # Headers and body go out in separate writes; without NODELAY, Nagle plus the
        # client's delayed ACK adds ~40 ms to every response.
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request.settimeout(10)
        # Track before the handshake, so stop() can also unblock a client stuck in it.
        self.server.track(self.request, True)
        try:
            self.request.do_handshake()
        except BaseException:
            self.server.track(self.request, False)  # finish() does not run when setup fails
            raise
        super().setup()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.track(self.request, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s - %s", self.address_string(), format % args)

    def send_response(self, code: int, message: str | None = None) -> None:
        # As kube-apiserver: no Server header.
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Date", self.date_time_string())

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # The stdlib answers malformed requests and unknown methods with HTML; kube clients
        # expect a Status.
        if code == 501:  # "unsupported method": kube-apiserver says 405
            code = 405
        reasons = {
            400: "BadRequest",
            404: "NotFound",
            405: "MethodNotAllowed",
            413: "RequestEntityTooLarge",
            414: "RequestURITooLong",
            431: "RequestHeaderFieldsTooLarge",
        }
        body = json.dumps(
            failure_status(code, reasons.get(code, "BadRequest"), message or "bad request")
        ).encode()
        self.close_connection = True
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except _STREAM_ERRORS:
            pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    # ----- request state and recording ---------------------------------------------------

    @property
    def emulator(self) -> KubeEmulator:
        return self.server.emulator

    def _reset(self, method: str) -> None:
        parts = urllib.parse.urlsplit(self.path)
        self._method = method
        self._path = parts.path or "/"
        self._query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        self._principal: str | None = None
        self._verb = "get" if method == "GET" else method.lower()
        self._route: _Route | None = None
        self._dry_run = False
        self._recorded = False
        # Like kube-apiserver (WithAuditID): a client's non-empty Audit-ID is kept as sent.
        self._audit_id = self.headers.get("Audit-ID") or str(uuid.uuid4())

    def _record(self, status: int) -> None:
        if self._recorded:
            return
        self._recorded = True
        route = self._route
        self.emulator.call_log.append(
            CallRecord(
                principal=self._principal,
                method=self._method,
                path=self._path,
                query={k: list(v) for k, v in self._query.items()},
                verb=self._verb,
                status=status,
                group=route.info.group if route else None,
                resource=route.info.name if route else None,
                subresource=route.subresource if route else None,
                namespace=route.namespace if route else None,
                name=route.name if route else None,
                dry_run=self._dry_run,
                user_agent=self.headers.get("User-Agent", ""),
                audit_id=self._audit_id,
            )
        )

    # ----- responses ---------------------------------------------------------------------

    def _common_headers(self) -> None:
        self.send_header("Audit-Id", self._audit_id)
        self.send_header("Cache-Control", "no-cache, private")

    def _send_bytes(self, code: int, data: bytes, content_type: str) -> None:
        self._record(code)
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self._common_headers()
        self.end_headers()
        self.wfile.write(data)

    def _send_json(self, code: int, obj: Any, content_type: str = "application/json") -> None:
        self._send_bytes(code, json.dumps(obj, separators=(",", ":")).encode(), content_type)

    def _send_error(self, error: ApiError) -> None:
        self._send_json(error.code, error.status())

    def _start_stream(self, content_type: str) -> None:
        self._record(200)
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self._common_headers()
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")

    def _end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")

    # ----- body --------------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            total = 0
            while True:
                size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
                size = int(size_line or b"0", 16)
                if size == 0:
                    self.rfile.readline(1024)
                    break
                total += size
                if total > MAX_BODY_BYTES:
                    raise ApiError(413, "RequestEntityTooLarge", "the request body is too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise ApiError(413, "RequestEntityTooLarge", "the request body is too large")
        return self.rfile.read(length) if length else b""

    def _content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()

    def _decode_object(self, raw: bytes) -> Any:
        content_type = self._content_type()
        if not raw:
            return None
        try:
            if content_type in ("", "application/json", "*/*"):
                return json.loads(raw)
            if content_type in ("application/yaml", "application/x-yaml", "text/yaml"):
                return yaml.safe_load(raw)
            if content_type == protobuf.CONTENT_TYPE:
                return protobuf.decode_object(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise bad_request(f"error decoding the request body: {exc}") from exc
        raise ApiError(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: "
            "application/json, application/yaml",
        )

    # ----- dispatch ----------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        self._reset(method)
        try:
            raw = self._read_body()
            if self._path in _HEALTH_PATHS and method == "GET":
                self._send_bytes(200, b"ok", "text/plain; charset=utf-8")
                return
            token = bearer_token(self.headers.get("Authorization"))
            principal = None
            if token:
                try:
                    principal = self.emulator.authenticate(token)
                except Exception:  # an authenticator bug must not leak as a 500 with details
                    log.exception("authenticator raised")
                    principal = None
            if not principal:
                raise ApiError(401, "Unauthorized", "Unauthorized")
            self._principal = principal
            self._route_request(method, raw)
        except ApiError as exc:
            if not self._recorded:
                self._send_error(exc)
            else:  # headers already sent (a stream): the only safe signal is closing
                self.close_connection = True
        except _STREAM_ERRORS:
            self.close_connection = True
        except Exception:  # answer like kube-apiserver rather than dropping the connection
            log.exception("emulator failed on %s %s", method, self.path)
            if not self._recorded:
                self._send_error(
                    ApiError(500, "InternalError", "Internal error occurred: see emulator log")
                )
            else:
                self.close_connection = True

    def _route_request(self, method: str, raw: bytes) -> None:
        segments = [urllib.parse.unquote(s) for s in self._path.strip("/").split("/") if s != ""]
        discovery = self.emulator.discovery
        if method != "GET" and (not segments or segments[0] not in ("api", "apis")):
            raise method_not_allowed(
                "the server does not allow this method on the requested resource"
            )
        if not segments:
            self._send_json(
                200,
                {
                    "paths": [
                        "/api",
                        "/api/v1",
                        "/apis",
                        "/healthz",
                        "/livez",
                        "/readyz",
                        "/version",
                    ]
                },
            )
            return
        if segments == ["version"]:
            self._send_json(200, VERSION_INFO)
            return
        if segments[0] == "openapi" and method == "GET":
            self._serve_openapi(segments[1:])
            return
        if segments[0] == "api":
            if len(segments) == 1:
                self._need_get(method)
                fmt = negotiate_discovery_format(self.headers.get("Accept"))
                if fmt.kind == "aggregated":
                    self._send_json(200, discovery.aggregated_core(), AGGREGATED_CONTENT_TYPE)
                else:
                    self._send_json(200, discovery.core_versions(self.emulator.server_address))
                return
            group, version, rest = "", segments[1], segments[2:]
        elif segments[0] == "apis":
            if len(segments) == 1:
                self._need_get(method)
                fmt = negotiate_discovery_format(self.headers.get("Accept"))
                if fmt.kind == "aggregated":
                    self._send_json(200, discovery.aggregated_apis(), AGGREGATED_CONTENT_TYPE)
                else:
                    self._send_json(200, discovery.group_list())
                return
            if len(segments) == 2:
                self._need_get(method)
                doc = discovery.group(segments[1])
                if doc is None:
                    raise _not_found_path()
                self._send_json(200, doc)
                return
            group, version, rest = segments[1], segments[2], segments[3:]
        else:
            raise _not_found_path()
        if not discovery.has_group_version(group, version):
            raise _not_found_path()
        if not rest:
            self._need_get(method)
            doc = discovery.resource_list(group, version)
            assert doc is not None
            self._send_json(200, doc)
            return
        route = self._resolve(group, version, rest)
        self._route = route
        self._serve_resource(method, route, raw)

    def _serve_openapi(self, rest: list[str]) -> None:
        # Only v3, and only skeletal (see openapi.py); v2 stays 404 so kubectl computes
        # strategic merge patches from its compiled-in types.
        if rest == ["v3"]:
            self._send_json(200, self.emulator.openapi.root())
            return
        if len(rest) >= 2 and rest[0] == "v3":
            doc = self.emulator.openapi.document("/".join(rest[1:]))
            if doc is not None:
                self._send_bytes(200, doc.encode(), "application/json")
                return
        raise _not_found_path()

    def _need_get(self, method: str) -> None:
        if method != "GET":
            raise method_not_allowed(
                "the server does not allow this method on the requested resource"
            )

    def _resolve(self, group: str, version: str, rest: list[str]) -> _Route:
        discovery = self.emulator.discovery
        watch_prefix = False
        if rest[0] == "watch":
            watch_prefix, rest = True, rest[1:]
            if not rest:
                raise _not_found_path()
        namespace: str | None = None
        if (
            rest[0] == "namespaces"
            and len(rest) >= 3
            and not (group == "" and len(rest) == 3 and rest[2] in ("status", "finalize"))
        ):
            namespace, rest = rest[1], rest[2:]
        if len(rest) > 3:
            raise _not_found_path()
        resource = rest[0]
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        info = discovery.resource(group, version, resource)
        if info is None:
            raise _not_found_path()
        if namespace is not None and not info.namespaced:
            raise _not_found_path()
        if info.namespaced and namespace is None and name is not None:
            raise _not_found_path()
        if subresource is not None and subresource not in info.subresources:
            raise _not_found_path()
        if name == "":
            raise _not_found_path()
        return _Route(info, namespace, name, subresource, watch_prefix)

    # ----- resources ---------------------------------------------------------------------

    def _serve_resource(self, method: str, route: _Route, raw: bytes) -> None:
        api = self.emulator.api
        info, ns, name, sub = route.info, route.namespace, route.name, route.subresource
        query = self._query
        self._dry_run = is_dry_run(query.get("dryRun", []))
        if route.watch_prefix or (method == "GET" and name is None and query_flag(query, "watch")):
            self._verb = "watch"
            if method != "GET" or sub is not None:
                raise method_not_allowed("watch only supports GET")
            self._serve_watch(route.info, route.namespace, route.name)
            return
        if sub is not None:
            self._serve_subresource(method, route, raw)
            return
        if method == "GET":
            fmt = negotiate_resource_format(self.headers.get("Accept"))
            if name is None:
                self._verb = "list"
                options = parse_list_options(info, query)
                result = api.list(info, ns, options)
                self._send_formatted(info, fmt, result["items"], result["metadata"], is_list=True)
            else:
                self._verb = "get"
                obj = api.get(info, ns, name)
                self._send_formatted(
                    info,
                    fmt,
                    [obj],
                    {"resourceVersion": obj["metadata"].get("resourceVersion", "")},
                    is_list=False,
                )
            return
        if method == "POST":
            self._verb = "create"
            if name is not None:
                raise method_not_allowed(
                    "the server does not allow this method on the requested resource"
                )
            code, obj = api.create(
                info, ns, self._decode_object(raw), dry_run=self._dry_run, principal=self._principal
            )
            self._send_json(code, obj)
            return
        if method == "PUT":
            self._verb = "update"
            if name is None:
                raise method_not_allowed(
                    "the server does not allow this method on the requested resource"
                )
            self._send_json(
                200, api.update(info, ns, name, self._decode_object(raw), dry_run=self._dry_run)
            )
            return
        if method == "PATCH":
            self._verb = "patch"
            if name is None:
                raise method_not_allowed(
                    "the server does not allow this method on the requested resource"
                )
            self._send_json(
                200, api.patch(info, ns, name, self._content_type(), raw, dry_run=self._dry_run)
            )
            return
        if method == "DELETE":
            delete_options = self._delete_options(raw)
            if name is None:
                self._verb = "deletecollection"
                list_options = parse_list_options(info, query)
                result = api.delete_collection(
                    info, ns, list_options, delete_options, dry_run=self._dry_run
                )
                result["items"] = [strip_type_meta(o) for o in result["items"]]
                self._send_json(200, result)
            else:
                self._verb = "delete"
                self._send_json(
                    200, api.delete(info, ns, name, delete_options, dry_run=self._dry_run)
                )
            return
        raise method_not_allowed("the server does not allow this method on the requested resource")

    def _delete_options(self, raw: bytes) -> Object:
        body = self._decode_object(raw) if raw else None
        options: Object = dict(body) if isinstance(body, dict) else {}
        # Query parameters override the body, as kube merges them.
        if query_one(self._query, "propagationPolicy"):
            options["propagationPolicy"] = query_one(self._query, "propagationPolicy")
        if query_one(self._query, "gracePeriodSeconds"):
            try:
                options["gracePeriodSeconds"] = int(
                    query_one(self._query, "gracePeriodSeconds") or "0"
                )
            except ValueError as exc:
                raise bad_request("gracePeriodSeconds must be an integer") from exc
        if options.get("dryRun"):
            self._dry_run = self._dry_run or is_dry_run(list(options["dryRun"]))
        return options

    def _send_formatted(
        self,
        info: ResourceInfo,
        fmt: OutputFormat,
        objects: list[Object],
        list_meta: Object,
        *,
        is_list: bool,
    ) -> None:
        if fmt.kind == "table":
            include = query_one(self._query, "includeObject") or "Metadata"
            if include not in ("None", "Metadata", "Object"):
                raise bad_request(
                    f'includeObject: Unsupported value: "{include}": supported values: "None", "Metadata", "Object"'
                )
            self._send_json(
                200,
                to_table(
                    info.group_resource,
                    objects,
                    version=fmt.version,
                    include_object=include,
                    list_metadata=list_meta,
                ),
            )
            return
        if fmt.kind == "metadata":
            items = [partial_object_metadata(o, fmt.version) for o in objects]
            if is_list:
                self._send_json(
                    200,
                    {
                        "kind": "PartialObjectMetadataList",
                        "apiVersion": f"meta.k8s.io/{fmt.version}",
                        "metadata": list_meta,
                        "items": items,
                    },
                )
            else:
                self._send_json(200, items[0])
            return
        if is_list:
            self._send_json(
                200,
                {
                    "kind": f"{info.kind}List",
                    "apiVersion": info.api_version,
                    "metadata": list_meta,
                    "items": [strip_type_meta(o) for o in objects],
                },
            )
        else:
            self._send_json(200, objects[0])

    def _serve_subresource(self, method: str, route: _Route, raw: bytes) -> None:
        api = self.emulator.api
        info, ns, name, sub = route.info, route.namespace, route.name, route.subresource
        assert name is not None and sub is not None
        key = info.group_resource
        if sub == "status":
            if method == "GET":
                self._send_json(200, api.get(info, ns, name))
            elif method == "PUT":
                self._verb = "update"
                self._send_json(
                    200,
                    api.update(
                        info,
                        ns,
                        name,
                        self._decode_object(raw),
                        dry_run=self._dry_run,
                        subresource="status",
                    ),
                )
            elif method == "PATCH":
                self._verb = "patch"
                self._send_json(
                    200,
                    api.patch(
                        info,
                        ns,
                        name,
                        self._content_type(),
                        raw,
                        dry_run=self._dry_run,
                        subresource="status",
                    ),
                )
            else:
                raise method_not_allowed(
                    "the server does not allow this method on the requested resource"
                )
            return
        if sub == "scale":
            if method not in ("GET", "PUT", "PATCH"):
                raise method_not_allowed(
                    "the server does not allow this method on the requested resource"
                )
            self._verb = {"GET": "get", "PUT": "update", "PATCH": "patch"}[method]
            self._send_json(
                200,
                api.scale(
                    method,
                    info,
                    ns,
                    name,
                    content_type=self._content_type(),
                    raw=raw,
                    dry_run=self._dry_run,
                ),
            )
            return
        if key == ("", "pods") and sub == "log":
            if method != "GET":
                raise method_not_allowed(
                    "the server does not allow this method on the requested resource"
                )
            self._serve_log(ns or "", name)
            return
        if key == ("", "serviceaccounts") and sub == "token":
            if method != "POST":
                raise method_not_allowed(
                    "the server does not allow this method on the requested resource"
                )
            self._verb = "create"
            self._send_json(
                201,
                api.token_request(ns or "", name, self._decode_object(raw), dry_run=self._dry_run),
            )
            return
        if key == ("", "pods") and sub == "eviction":
            if method != "POST":
                raise method_not_allowed(
                    "the server does not allow this method on the requested resource"
                )
            self._verb = "create"
            self._send_json(
                201, api.evict(ns or "", name, self._decode_object(raw), dry_run=self._dry_run)
            )
            return
        if key == ("", "pods") and sub == "exec" and method in ("GET", "POST"):
            self._verb = "create" if method == "POST" else "get"
            serve_exec(self, self.emulator, api.get(info, ns, name), self._query)
            return
        if sub in ("exec", "attach", "portforward"):
            # What kube-apiserver says to a client that does not upgrade the connection.
            api.get(info, ns, name)
            raise bad_request("Upgrade request required")
        if method == "GET" and sub == "ephemeralcontainers":
            self._send_json(200, api.get(info, ns, name))
            return
        raise method_not_allowed(f"the emulator does not implement {info.name}/{sub}")
