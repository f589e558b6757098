"""``pods/{name}/exec`` over WebSocket, as kube-apiserver and the kubelet serve it (a test tool).

The channel protocols ``v5.channel.k8s.io`` and ``v4.channel.k8s.io``: every binary message
starts with a channel byte — 0 stdin, 1 stdout, 2 stderr, 3 error (a ``Status`` JSON sent
once, when the process ends), 4 resize (ignored: no terminal here) — and v5 adds 255
"close": ``[255, 0]`` from the client means end of stdin. Under v4 stdin can only end with
the connection. The server picks the first protocol the client offers that it knows, as
kube-apiserver's ``wsstream`` does.

Everything is checked before the upgrade and refused with a kube ``Status``, like
kube-apiserver: unknown pod (404), bad container or options (400), a pod that is not
Running (400). The processes are pretend ones (:mod:`.exec_commands`). The WebSocket framing
is written out here (RFC 6455, server side) rather than borrowed from a client library, so
tests of the gateway's client exercise an independent implementation.
"""

from __future__ import annotations

import base64
import hashlib
import json
import queue
import socket
import ssl
import struct
import threading
from typing import TYPE_CHECKING, Any, BinaryIO

from .errors import ApiError, bad_request
from .exec_commands import ExecIO, PretendContainer, container_env, container_files, secret_reader
from .logs import choose_container

if TYPE_CHECKING:
    from .emulator import KubeEmulator

Object = dict[str, Any]

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_OP_CONT, _OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING, _OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # larger client messages end the session
_FRAME_BYTES = 32 * 1024


class _Closed(Exception):
    """The peer went away or broke the framing."""


def wants_websocket(headers: Any) -> bool:
    """True when the request asks to upgrade to WebSocket."""
    upgrade = (headers.get("Upgrade") or "").lower()
    connection = (headers.get("Connection") or "").lower()
    return upgrade == "websocket" and "upgrade" in [t.strip() for t in connection.split(",")]


def choose_protocol(offered_header: str | None, supported: tuple[str, ...] = PROTOCOLS) -> str:
    """The first offered subprotocol we speak; 400 like kube-apiserver when there is none."""
    offered = [p.strip() for p in (offered_header or "").split(",") if p.strip()]
    for protocol in offered:
        if protocol in supported:
            return protocol
    raise bad_request(
        f"unable to upgrade connection: requested protocol(s) are not supported: {offered}; "
        f"supports {list(supported)}"
    )


def exec_options(query: dict[str, list[str]]) -> dict[str, Any]:
    """``command``, ``container``, ``stdin``/``stdout``/``stderr``/``tty`` with kube's checks."""

    def flag(name: str) -> bool:
        values = query.get(name) or []
        return bool(values) and values[-1].lower() in ("true", "1")

    options = {
        "command": list(query.get("command") or []),
        "container": (query.get("container") or [""])[-1],
        "stdin": flag("stdin"),
        "stdout": flag("stdout"),
        "stderr": flag("stderr"),
        "tty": flag("tty"),
    }
    if not options["command"]:
        raise bad_request("you must specify at least one command for the container")
    if not (options["stdin"] or options["stdout"] or options["stderr"]):
        raise bad_request("you must specify at least 1 of stdin, stdout, stderr")
    if options["tty"] and options["stderr"]:
        raise bad_request("tty and stderr cannot both be true")
    return options


def check_running(pod: Object, container: str) -> None:
    """Refuse, before upgrading, a pod whose container cannot run a process."""
    name = pod["metadata"]["name"]
    if not (pod.get("spec") or {}).get("nodeName"):
        raise bad_request(f"pod {name} does not have a host assigned")
    phase = (pod.get("status") or {}).get("phase")
    if phase in ("Succeeded", "Failed"):
        raise bad_request(
            f"cannot exec into a container in a completed pod; current phase is {phase}"
        )
    if phase != "Running":
        raise ApiError(
            500,
            "InternalError",
            f'Internal error occurred: unable to upgrade connection: container not found ("{container}")',
        )


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a client's ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """One final, unmasked frame (servers never mask)."""
    head = bytes([0x80 | opcode])
    size = len(payload)
    if size < 126:
        head += bytes([size])
    elif size < 65536:
        head += bytes([126]) + struct.pack("!H", size)
    else:
        head += bytes([127]) + struct.pack("!Q", size)
    return head + payload


def _read_exact(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size) if size else b""
    if len(data) != size:
        raise _Closed()
    return data


def _unmask(data: bytes, mask: bytes) -> bytes:
    key = (mask * (len(data) // 4 + 1))[: len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(len(data), "big")


def read_message(stream: BinaryIO) -> tuple[int, bytes]:
    """One whole message (fragments joined; control frames returned as they come)."""
    opcode_of_message, parts, total = None, [], 0
    while True:
        b0, b1 = _read_exact(stream, 2)
        fin, opcode, masked, size = b0 & 0x80, b0 & 0x0F, b1 & 0x80, b1 & 0x7F
        if not masked:  # RFC 6455 5.1: a server must close on an unmasked client frame
            raise _Closed()
        if size == 126:
            size = struct.unpack("!H", _read_exact(stream, 2))[0]
        elif size == 127:
            size = struct.unpack("!Q", _read_exact(stream, 8))[0]
        total += size
        if total > MAX_MESSAGE_BYTES:
            raise _Closed()
        mask = _read_exact(stream, 4)
        payload = _unmask(_read_exact(stream, size), mask)
        if opcode >= 0x8:
            return opcode, payload
        if opcode != _OP_CONT:
            opcode_of_message = opcode
        parts.append(payload)
        if fin:
            return opcode_of_message or _OP_BINARY, b"".join(parts)


class _SharedTlsSocket:
    """One TLS socket used by two threads, one TLS call at a time.

    OpenSSL forbids using one connection from two threads at once (TLS 1.3's post-handshake
    messages made that visible as lost or garbled records), so reads poll briefly under the
    lock and writes take it too. A timed-out TLS read loses nothing.
    """

    _POLL = 0.05

    def __init__(self, sock: socket.socket, finished: threading.Event) -> None:
        self.sock = sock
        self.finished = finished
        self.lock = threading.Lock()
        self.buffer = bytearray()

    def read(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if self.finished.is_set():
                raise _Closed()
            with self.lock:
                self.sock.settimeout(self._POLL)
                try:
                    chunk = self.sock.recv(65536)
                except (TimeoutError, ssl.SSLWantReadError):
                    continue
            if not chunk:
                raise _Closed()
            self.buffer += chunk
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def write(self, data: bytes) -> None:
        with self.lock:
            self.sock.settimeout(10)
            self.sock.sendall(data)


class ExecSession:
    """One upgraded exec connection: a reader thread for the client, the process in this one."""

    def __init__(self, sock: socket.socket, protocol: str, options: dict[str, Any]) -> None:
        self.sock = sock
        self.protocol = protocol
        self.options = options
        self.stdin: queue.Queue[bytes] = queue.Queue()
        self.stopped = threading.Event()  # the client left: the process should end
        self.finished = threading.Event()  # the session is over: the reader should end
        self.tls = _SharedTlsSocket(sock, self.finished)
        self._close_sent = False

    def send(self, opcode: int, payload: bytes) -> None:
        if opcode == _OP_CLOSE:
            if self._close_sent:
                return
            self._close_sent = True
        elif self.stopped.is_set():
            return
        try:
            self.tls.write(encode_frame(opcode, payload))
        except OSError:
            self.stopped.set()

    def send_channel(self, channel: int, data: bytes) -> None:
        for start in range(0, len(data), _FRAME_BYTES):
            self.send(_OP_BINARY, bytes([channel]) + data[start : start + _FRAME_BYTES])

    def _read_loop(self) -> None:
        try:
            while True:
                opcode, payload = read_message(self.tls)  # type: ignore[arg-type]
                if opcode == _OP_CLOSE:
                    self.send(_OP_CLOSE, payload[:2])
                    break
                if opcode == _OP_PING:
                    self.send(_OP_PONG, payload)
                elif opcode == _OP_BINARY and payload:
                    self._on_channel(payload[0], payload[1:])
        except (_Closed, OSError, ValueError):
            pass
        finally:
            self.stopped.set()
            self.stdin.put(b"")

    def _on_channel(self, channel: int, data: bytes) -> None:
        if channel == STDIN and data and self.options["stdin"]:
            self.stdin.put(data)
        elif channel == CLOSE and self.protocol.startswith("v5") and data[:1] == bytes([STDIN]):
            self.stdin.put(b"")  # end of stdin; later stdin frames are ignored
            self.options["stdin"] = False
        # RESIZE and anything else: nothing to do without a terminal.

    def read_stdin(self, timeout: float) -> bytes | None:
        if not self.options["stdin"] and self.stdin.empty():
            return b""
        try:
            return self.stdin.get(timeout=timeout)
        except queue.Empty:
            return None

    def run(self, pod: Object, container: str, emulator: KubeEmulator) -> None:
        reader = threading.Thread(
            target=self._read_loop, name="kube-emulator-exec-reader", daemon=True
        )
        reader.start()
        stopping_watch = threading.Thread(
            target=self._stop_with, args=(emulator.stopping,), daemon=True
        )
        stopping_watch.start()
        tty = self.options["tty"]

        def write_stdout(data: bytes) -> None:
            if self.options["stdout"]:
                self.send_channel(STDOUT, data)

        def write_stderr(data: bytes) -> None:
            # With a terminal, stderr is merged into stdout as a real terminal would show it.
            if self.options["stderr"] or tty:
                self.send_channel(STDOUT if tty else STDERR, data)

        io = ExecIO(
            read_stdin=self.read_stdin,
            write_stdout=write_stdout,
            write_stderr=write_stderr,
            stopped=self.stopped,
        )
        env = container_env(
            pod, container, secret_reader(lambda ns, n: emulator.get_object("", "secrets", ns, n))
        )
        code = PretendContainer(pod, container_files(pod, container), env, io).run(
            list(self.options["command"])
        )
        self.send_channel(ERROR, json.dumps(exit_status(code, self.options["command"])).encode())
        self.send(_OP_CLOSE, struct.pack("!H", 1000))
        reader.join(timeout=2.0)  # the client answers our close
        self.stopped.set()
        self.finished.set()
        reader.join()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _stop_with(self, emulator_stopping: threading.Event) -> None:
        while not self.stopped.wait(0.2):
            if emulator_stopping.is_set():
                self.stopped.set()
                self.stdin.put(b"")


def exit_status(code: int, command: list[str]) -> Object:
    """What the kubelet writes on the error channel when the process ends."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": f"command terminated with non-zero exit code: error executing command {command}, exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def serve_exec(
    handler: Any, emulator: KubeEmulator, pod: Object, query: dict[str, list[str]]
) -> None:
    """Validate, upgrade and run one exec request on ``handler``'s connection (the server hook)."""
    options = exec_options(query)
    options["container"] = choose_container(pod, options["container"] or None)
    check_running(pod, options["container"])
    if not wants_websocket(handler.headers):
        raise bad_request("Upgrade request required")
    if handler.headers.get("Sec-WebSocket-Version") != "13" or not handler.headers.get(
        "Sec-WebSocket-Key"
    ):
        raise bad_request("unable to upgrade connection: missing or bad Sec-WebSocket-Version/Key")
    protocol = choose_protocol(
        handler.headers.get("Sec-WebSocket-Protocol"), emulator.exec_protocols
    )
    handler._record(101)
    handler.send_response(101, "Switching Protocols")
    handler.send_header("Upgrade", "websocket")
    handler.send_header("Connection", "Upgrade")
    handler.send_header("Sec-WebSocket-Accept", accept_key(handler.headers["Sec-WebSocket-Key"]))
    handler.send_header("Sec-WebSocket-Protocol", protocol)
    handler.end_headers()
    handler.wfile.flush()
    handler.close_connection = True
    ExecSession(handler.request, protocol, options).run(pod, options["container"], emulator)
