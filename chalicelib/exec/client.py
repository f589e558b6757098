"""Open kube-apiserver's WebSocket exec and run one command to completion or to a deadline.

The Lambda holds the stream itself (API Gateway carries no upgrades): TLS verified against
the cluster's CA, the policy role's EKS token as bearer, ``v5.channel.k8s.io`` offered first
and ``v4.channel.k8s.io`` as fallback. stdin (bounded) is sent whole and then closed: under
v5 with the close channel; v4 has no way to end stdin short of closing the connection, so a
command that reads stdin to its end runs until the deadline there (and is reported as cut).
Output is kept up to a bound per stream, with a count of the bytes cut. One deadline covers
connecting, sending and reading; at the deadline the gateway closes the stream and says so.
"""

from __future__ import annotations

import socket
import ssl
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass

from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from chalicelib.errors import BadGateway, BadRequest, EksgateError, GatewayTimeout, NotFound
from chalicelib.exec.channels import (
    ERROR,
    MAX_STATUS_BYTES,
    PROTOCOL_V5,
    PROTOCOLS,
    STDERR,
    STDOUT,
    BoundedBuffer,
    close_stdin_message,
    kube_status_message,
    parse_exit_status,
    stdin_message,
)
from chalicelib.gateway.clusters import ClusterEndpoint

MAX_STDIN_BYTES = 1024 * 1024
MAX_OUTPUT_BYTES = 1024 * 1024  # per stream
_STDIN_PIECE = 64 * 1024
MAX_MESSAGE = 4 * 1024 * 1024  # one message from the cluster

FATE_EXITED = "exited"
FATE_CUT = (
    "still running, as far as the gateway knows: it closed the stream at its deadline and "
    "Kubernetes does not signal an exec'd process when its client leaves; the process ends "
    "when it finishes by itself, reads end of input, or writes to the closed stream"
)
FATE_UNKNOWN = "unknown: the stream ended without an exit status"


@dataclass(frozen=True)
class ExecTarget:
    namespace: str
    pod: str
    container: str | None
    argv: tuple[str, ...]
    audit_id: str = ""  # sent as Audit-ID: the cluster's audit event joins eksgate's record


@dataclass(frozen=True)
class ExecResult:
    protocol: str
    stdout: bytes
    stderr: bytes
    stdout_cut_bytes: int
    stderr_cut_bytes: int
    exit_code: int | None
    outcome: str  # exited | cut (the deadline) | failed (no exit status)
    error: str
    remote_process: str  # the process's fate, as far as we can tell
    stdin_closed: bool  # whether the process was told stdin ended
    duration_ms: int


class ExecRefused(EksgateError):
    """The cluster refused the exec before it started (its Status code and message)."""

    status = 502


def _refusal(cluster: str, code: int, body: bytes) -> EksgateError:
    message = kube_status_message(body) or f"HTTP {code}"
    text = f"cluster {cluster!r} refused the exec: {message}"
    if code == 404:
        return NotFound(text)
    if code in (400, 422):
        return BadRequest(text)
    return ExecRefused(text, details={"cluster_status": code})


def exec_url(cluster: ClusterEndpoint, target: ExecTarget, with_stdin: bool) -> str:
    parts = urllib.parse.urlsplit(cluster.url)
    if parts.scheme != "https":
        raise BadGateway(f"cluster {cluster.name!r} endpoint must be https")
    quote = urllib.parse.quote
    path = (
        f"{parts.path.rstrip('/')}/api/v1/namespaces/{quote(target.namespace, safe='')}"
        f"/pods/{quote(target.pod, safe='')}/exec"
    )
    query = [("command", arg) for arg in target.argv]
    if target.container:
        query.append(("container", target.container))
    query += [("stdout", "true"), ("stderr", "true")]
    if with_stdin:
        query.append(("stdin", "true"))
    return urllib.parse.urlunsplit(("wss", parts.netloc, path, urllib.parse.urlencode(query), ""))


class WebSocketExecClient:
    """The real exec transport (EKS, or the local emulator, which speaks verified TLS too).

    websockets' sans-I/O protocol on a socket this thread alone reads and writes: its
    threaded sync client reads and writes one TLS connection from two threads, which
    OpenSSL does not support (TLS 1.3's session tickets made a request vanish about once in
    fifty connections).
    """

    def __init__(self, connect_timeout: float = 5.0) -> None:
        self._connect_timeout = connect_timeout

    def run(
        self,
        cluster: ClusterEndpoint,
        token: str,
        target: ExecTarget,
        stdin: bytes | None,
        deadline: float,
    ) -> ExecResult:
        """Run ``target`` until it exits or ``deadline`` (``time.monotonic()``) passes."""
        if stdin is not None and len(stdin) > MAX_STDIN_BYTES:
            raise BadRequest(f"stdin is over the limit of {MAX_STDIN_BYTES} bytes")
        started = time.monotonic()
        url = exec_url(cluster, target, stdin is not None)
        conn = _Connection(cluster.name, deadline)
        try:
            conn.open(url, cluster.ca_pem, token, self._connect_timeout, target.audit_id)
            return _converse(conn, stdin, deadline, started)
        finally:
            conn.close()


class _Connection:
    """One WebSocket over TLS, driven from one thread, every wait bounded by the deadline."""

    def __init__(self, cluster: str, deadline: float) -> None:
        self.cluster = cluster
        self.deadline = deadline
        self.sock: ssl.SSLSocket | None = None
        self.protocol: ClientProtocol | None = None
        self.subprotocol = ""
        self._fragments: list[bytes] = []

    def open(
        self, url: str, ca_pem: bytes, token: str, connect_timeout: float, audit_id: str
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        context = ssl.create_default_context(cadata=ca_pem.decode())
        try:
            raw = socket.create_connection(
                (parts.hostname, parts.port or 443), timeout=min(connect_timeout, self._left())
            )
            self.sock = context.wrap_socket(raw, server_hostname=parts.hostname)
        except ssl.SSLCertVerificationError:
            raise BadGateway(
                f"TLS to cluster {self.cluster!r} failed verification against its CA"
            ) from None
        except TimeoutError:
            raise GatewayTimeout(
                f"cluster {self.cluster!r} did not accept the exec in time"
            ) from None
        except OSError as exc:
            raise BadGateway(
                f"cannot reach cluster {self.cluster!r}: {type(exc).__name__}"
            ) from None
        self.protocol = ClientProtocol(
            parse_uri(url), subprotocols=[Subprotocol(p) for p in PROTOCOLS], max_size=MAX_MESSAGE
        )
        request = self.protocol.connect()
        request.headers["Authorization"] = f"Bearer {token}"
        request.headers["User-Agent"] = "eksgate-exec"
        if audit_id:
            request.headers["Audit-ID"] = audit_id
        self.protocol.send_request(request)
        self._flush()
        while self.protocol.state == State.CONNECTING:
            if not self._pump():
                break
            for event in self.protocol.events_received():
                if isinstance(event, Response):
                    self._check_handshake(event)

    def _check_handshake(self, response: Response) -> None:
        error = self.protocol.handshake_exc if self.protocol else None
        if isinstance(error, InvalidStatus):
            raise _refusal(self.cluster, response.status_code, bytes(response.body))
        if error is not None:
            raise BadGateway(
                f"cluster {self.cluster!r} refused the WebSocket upgrade for exec: {error}"
            )
        self.subprotocol = response.headers.get("Sec-WebSocket-Protocol", "")
        if self.subprotocol not in PROTOCOLS:
            raise BadGateway(
                f"cluster {self.cluster!r} accepted exec without a channel protocol we speak "
                f"({self.subprotocol!r})"
            )

    def _left(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError()
        return left

    def _flush(self) -> None:
        assert self.sock is not None and self.protocol is not None
        data = b"".join(self.protocol.data_to_send())
        if data:
            self.sock.settimeout(self._left())
            self.sock.sendall(data)

    def _pump(self) -> bool:
        """Read once from the socket into the protocol; False at end of stream."""
        assert self.sock is not None and self.protocol is not None
        self.sock.settimeout(self._left())
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            raise TimeoutError() from None
        if data:
            self.protocol.receive_data(data)
        else:
            self.protocol.receive_eof()
        self._flush()  # pongs and close replies
        return bool(data)

    def send(self, data: bytes) -> None:
        assert self.protocol is not None
        self.protocol.send_binary(data)
        self._flush()

    def messages(self) -> Iterator[bytes]:
        """Binary messages until the server closes (TimeoutError at the deadline)."""
        assert self.protocol is not None
        while True:
            for event in self.protocol.events_received():
                if isinstance(event, Frame) and event.opcode in (Opcode.BINARY, Opcode.CONT):
                    self._fragments.append(bytes(event.data))
                    if event.fin:
                        message, self._fragments = b"".join(self._fragments), []
                        yield message
            if self.protocol.state == State.CLOSED or not self._pump():
                return

    def close(self) -> None:
        if self.sock is None:
            return
        try:
            if self.protocol is not None and self.protocol.state == State.OPEN:
                self.protocol.send_close(1000)
                self.sock.settimeout(1.0)
                self.sock.sendall(b"".join(self.protocol.data_to_send()))
        except OSError:
            pass
        finally:
            self.sock.close()
            self.sock = None


def _converse(
    conn: _Connection, stdin: bytes | None, deadline: float, started: float
) -> ExecResult:
    protocol = conn.subprotocol
    stdout, stderr = BoundedBuffer(MAX_OUTPUT_BYTES), BoundedBuffer(MAX_OUTPUT_BYTES)
    error = BoundedBuffer(MAX_STATUS_BYTES)
    stdin_closed = stdin is None
    outcome = ""
    try:
        if stdin is not None:
            for start in range(0, len(stdin), _STDIN_PIECE):
                conn.send(stdin_message(stdin[start : start + _STDIN_PIECE]))
            if protocol == PROTOCOL_V5:
                conn.send(close_stdin_message())
                stdin_closed = True
        for frame in conn.messages():
            if not frame:
                continue
            channel, data = frame[0], frame[1:]
            if channel == STDOUT:
                stdout.add(data)
            elif channel == STDERR:
                stderr.add(data)
            elif channel == ERROR:
                error.add(data)
    except TimeoutError:
        outcome = "cut"
    except OSError:
        pass  # the stream broke: judged below by whether an exit status arrived
    status = parse_exit_status(error.data) if error.data else None
    if outcome != "cut":
        outcome = "exited" if status and status.exit_code is not None else "failed"
    if outcome == "exited":
        fate = f"{FATE_EXITED} with code {status.exit_code}" if status else FATE_UNKNOWN
        message = ""
    elif outcome == "cut":
        fate, message = FATE_CUT, "the command was cut at the gateway's deadline"
    elif status:
        fate = "did not run to an exit code: the cluster reported a failure"
        message = status.error
    else:
        fate, message = FATE_UNKNOWN, "the stream ended without an exit status"
    return ExecResult(
        protocol=protocol,
        stdout=stdout.data,
        stderr=stderr.data,
        stdout_cut_bytes=stdout.cut_bytes,
        stderr_cut_bytes=stderr.cut_bytes,
        exit_code=status.exit_code if status and outcome == "exited" else None,
        outcome=outcome,
        error=message,
        remote_process=fate,
        stdin_closed=stdin_closed,
        duration_ms=int((time.monotonic() - started) * 1000),
    )
