"""The Kubernetes exec channel protocol, as pure functions (no sockets here).

Subprotocols ``v5.channel.k8s.io`` (preferred) and ``v4.channel.k8s.io``. Each binary message
starts with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize, 255 close (v5
only: ``[255, 0]`` closes stdin). The error channel carries one ``Status`` when the process
ends: ``Success``, or ``Failure`` with reason ``NonZeroExitCode`` and a cause ``ExitCode``
holding the code; any other Failure means the process could not run or its stream broke.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

PROTOCOL_V5 = "v5.channel.k8s.io"
PROTOCOL_V4 = "v4.channel.k8s.io"
PROTOCOLS = (PROTOCOL_V5, PROTOCOL_V4)  # offered in this order; the server picks

STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255

MAX_STATUS_BYTES = 64 * 1024


def stdin_message(data: bytes) -> bytes:
    return bytes([STDIN]) + data


def close_stdin_message() -> bytes:
    """v5's "no more stdin" (v4 has no such message: only closing the connection ends it)."""
    return bytes([CLOSE, STDIN])


@dataclass
class BoundedBuffer:
    """Keeps the first ``limit`` bytes and counts the rest."""

    limit: int
    kept: bytearray = field(default_factory=bytearray)
    cut_bytes: int = 0

    def add(self, data: bytes) -> None:
        room = max(0, self.limit - len(self.kept))
        self.kept += data[:room]
        self.cut_bytes += max(0, len(data) - room)

    @property
    def data(self) -> bytes:
        return bytes(self.kept)


@dataclass(frozen=True)
class ExitStatus:
    """What the error channel said: an exit code, or why there is none."""

    exit_code: int | None
    error: str = ""  # set when the process could not run or its stream failed


def parse_exit_status(raw: bytes) -> ExitStatus:
    """The exit code from the error channel's ``Status``; never raises."""
    try:
        status = json.loads(raw[:MAX_STATUS_BYTES].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return ExitStatus(None, "the cluster sent an unreadable exit status")
    if not isinstance(status, dict):
        return ExitStatus(None, "the cluster sent an unreadable exit status")
    if status.get("status") == "Success":
        return ExitStatus(0)
    if status.get("reason") == "NonZeroExitCode":
        causes = (status.get("details") or {}).get("causes") or []
        for cause in causes if isinstance(causes, list) else []:
            if isinstance(cause, dict) and cause.get("reason") == "ExitCode":
                try:
                    return ExitStatus(int(str(cause.get("message"))))
                except ValueError:
                    break
    message = status.get("message")
    return ExitStatus(
        None, str(message)[:1000] if message else "the command failed without an exit code"
    )


def kube_status_message(body: bytes) -> str:
    """The ``message`` of a kube ``Status`` response body ("" when it is not one)."""
    try:
        status = json.loads(body[:MAX_STATUS_BYTES].decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return ""
    message = status.get("message") if isinstance(status, dict) else None
    return str(message)[:1000] if message else ""
