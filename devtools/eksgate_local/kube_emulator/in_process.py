"""An in-process transport to the emulator: the gateway's ``Upstream`` without sockets or TLS.

:class:`InProcessUpstream` can stand where ``chalicelib.upstream.HttpsUpstream`` stands
(``send(cluster, UpstreamRequest, max_bytes)``). Each request is written out as HTTP/1.1 and
served by the emulator's own request handler over in-memory buffers, so routing, negotiation,
authentication, Status errors and call records are exactly those of the HTTPS server; the
answer is parsed back with ``http.client``. Gateway tests get a realistic cluster with no
subprocess, port or thread. Streams (watch, ``logs -f``) end at the request's
``timeoutSeconds`` or the emulator's cap; the request's deadline cuts them at the next write.
"""

from __future__ import annotations

import http.client
import io
import time
from typing import TYPE_CHECKING, Any

from chalicelib.errors import BadGateway
from chalicelib.gateway.upstream import UpstreamRequest, UpstreamResponse

from .server import _Handler

if TYPE_CHECKING:
    from chalicelib.gateway.clusters import ClusterEndpoint

    from .emulator import KubeEmulator


class _Output(io.BytesIO):
    """What the handler writes; past a stream's deadline, the client has hung up."""

    def __init__(self, request: UpstreamRequest) -> None:
        super().__init__()
        self._request = request
        self.cut = False

    def write(self, data: Any) -> int:
        if (
            self._request.stream
            and self._request.deadline
            and time.monotonic() >= self._request.deadline
        ):
            self.cut = True
            raise BrokenPipeError("deadline reached")  # the handler ends the stream quietly
        return super().write(data)


class _InMemoryHandler(_Handler):
    """The emulator's handler on one buffered request (no socket, no TLS, no tracking)."""

    def __init__(self, raw_request: bytes, output: _Output, emulator: KubeEmulator) -> None:
        # Not BaseRequestHandler.__init__: that takes a socket and a server, and of the server
        # the handler needs only the emulator. The same three steps, on byte buffers.
        self._raw_request = raw_request
        self._output = output
        self._emulator = emulator
        self.client_address = ("in-process", 0)
        self.setup()
        try:
            self.handle()
        finally:
            self.finish()

    @property
    def emulator(self) -> KubeEmulator:
        return self._emulator

    def setup(self) -> None:
        self.rfile = io.BytesIO(self._raw_request)
        self.wfile = self._output

    def finish(self) -> None:
        pass


class _Recorded:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, *args: Any, **kwargs: Any) -> io.BytesIO:
        return io.BytesIO(self._data)


def _http_request(cluster_host: str, request: UpstreamRequest) -> bytes:
    body = request.body or b""
    headers = {
        k.lower(): v
        for k, v in request.headers.items()
        if k.lower() not in ("host", "content-length", "connection", "transfer-encoding")
    }
    lines = [
        f"{request.method} {request.path_and_query} HTTP/1.1",
        f"Host: {cluster_host}",
        *(f"{name}: {value}" for name, value in headers.items()),
        f"Content-Length: {len(body)}",
        "Connection: close",
        "",
        "",
    ]
    return "\r\n".join(lines).encode("latin-1") + body


class InProcessUpstream:
    """``Upstream`` for a :class:`~.emulator.KubeEmulator` in this process (started or not)."""

    def __init__(self, emulator: KubeEmulator) -> None:
        self.emulator = emulator

    def send(
        self, cluster: ClusterEndpoint, request: UpstreamRequest, max_bytes: int
    ) -> UpstreamResponse:
        output = _Output(request)
        _InMemoryHandler(_http_request(cluster.name, request), output, self.emulator)
        written = output.getvalue()
        if not written:
            raise BadGateway(f"cluster {cluster.name!r} (in-process emulator) sent no answer")
        answer = http.client.HTTPResponse(_Recorded(written), method=request.method)  # type: ignore[arg-type]
        answer.begin()
        cut = output.cut
        try:
            body = answer.read()
        except http.client.IncompleteRead as partial:  # a stream ended mid-way by the deadline
            body, cut = partial.partial, True
        headers = {k.lower(): v for k, v in answer.getheaders()}
        if len(body) > max_bytes:
            return UpstreamResponse(answer.status, headers, b"", truncated=True)
        return UpstreamResponse(answer.status, headers, body, cut_at_deadline=cut)
