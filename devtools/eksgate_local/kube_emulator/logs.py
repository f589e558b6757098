"""Canned container logs for ``pods/{name}/log``.

Logs are text lines with a timestamp each (so ``timestamps=true`` works). Seeded pods get
hand-written lines (some deliberately contain credential-looking strings, for masking
tests); any other pod gets plausible lines derived from its image. ``follow=true`` appends
freshly generated lines for a bounded time.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .errors import bad_request
from .objects import parse_rfc3339

Object = dict[str, Any]


@dataclass(frozen=True)
class LogLine:
    """One log line as the kubelet would return it."""

    timestamp: datetime
    text: str

    def render(self, with_timestamp: bool) -> str:
        """The line as sent, ``\\n``-terminated, optionally RFC 3339 nano-prefixed."""
        if with_timestamp:
            return f"{self.timestamp.strftime('%Y-%m-%dT%H:%M:%S.%f')}000Z {self.text}\n"
        return f"{self.text}\n"


def _image_family(image: str) -> str:
    repo = image.rsplit("/", 1)[-1].split(":", 1)[0].split("@", 1)[0]
    return repo.lower()


def default_lines(image: str, start: datetime, count: int = 6) -> list[str]:
    """Plausible start-up lines for a container running ``image``."""
    family = _image_family(image)
    stamp = start.strftime("%Y/%m/%d %H:%M:%S")
    if family == "nginx":
        return [
            "/docker-entrypoint.sh: /docker-entrypoint.d/ is not empty, will attempt to perform configuration",
            "/docker-entrypoint.sh: Launching /docker-entrypoint.d/10-listen-on-ipv6-by-default.sh",
            "/docker-entrypoint.sh: Configuration complete; ready for start up",
            f'{stamp} [notice] 1#1: using the "epoll" event method',
            f"{stamp} [notice] 1#1: nginx/1.27.3",
            f"{stamp} [notice] 1#1: start worker processes",
        ][:count]
    return [
        f"{start.strftime('%Y-%m-%dT%H:%M:%SZ')} INFO  starting {family}",
        f"{start.strftime('%Y-%m-%dT%H:%M:%SZ')} INFO  loaded configuration from environment",
        f"{start.strftime('%Y-%m-%dT%H:%M:%SZ')} INFO  listening on :8080",
        f"{start.strftime('%Y-%m-%dT%H:%M:%SZ')} INFO  ready",
    ][:count]


def follow_line(image: str, when: datetime, seq: int) -> str:
    """A fresh line for ``follow=true`` streams."""
    if _image_family(image) == "nginx":
        return (
            f"10.0.2.{30 + seq % 50} - - [{when.strftime('%d/%b/%Y:%H:%M:%S +0000')}] "
            f'"GET /healthz HTTP/1.1" 200 2 "-" "kube-probe/1.35"'
        )
    return f"{when.strftime('%Y-%m-%dT%H:%M:%SZ')} INFO  heartbeat seq={seq} status=ok"


def render_placeholders(text: str, when: datetime) -> str:
    """Fill the time placeholders canned lines may use, so logs match the pod's age.

    ``{iso}`` → ``2024-12-12T09:14:05Z``, ``{clf}`` → ``12/Dec/2024:09:14:05 +0000`` (access
    logs), ``{slash}`` → ``2024/12/12 09:14:05`` (nginx error log). Plain ``str.replace``, so
    other braces (JSON lines) are left alone.
    """
    return (
        text.replace("{iso}", when.strftime("%Y-%m-%dT%H:%M:%SZ"))
        .replace("{clf}", when.strftime("%d/%b/%Y:%H:%M:%S +0000"))
        .replace("{slash}", when.strftime("%Y/%m/%d %H:%M:%S"))
    )


class LogBook:
    """Thread-safe canned log storage keyed by (namespace, pod, container)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lines: dict[tuple[str, str, str], list[str]] = {}
        self._seq = itertools.count(1)

    def set_lines(self, namespace: str, pod: str, container: str, lines: list[str]) -> None:
        """Replace the canned lines of one container (tests use this to plant content).

        Lines may contain the placeholders of :func:`render_placeholders`.
        """
        with self._lock:
            self._lines[(namespace, pod, container)] = list(lines)

    def next_seq(self) -> int:
        """A process-wide counter for generated follow lines."""
        return next(self._seq)

    def lines_for(self, pod: Object, container: str) -> list[LogLine]:
        """The log of ``container`` in ``pod``, canned or derived from its image."""
        meta = pod.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""), container)
        with self._lock:
            canned = self._lines.get(key)
        start = parse_rfc3339(
            ((pod.get("status") or {}).get("startTime")) or meta.get("creationTimestamp")
        )
        start = start or datetime.now(UTC)
        if canned is None:
            canned = default_lines(container_image(pod, container), start)
        lines = []
        for i, text in enumerate(canned):
            when = start + timedelta(seconds=i)
            lines.append(LogLine(when, render_placeholders(text, when)))
        return lines


def container_image(pod: Object, container: str) -> str:
    """The image of ``container`` in ``pod`` ("" if unknown)."""
    for c in _all_containers(pod):
        if c.get("name") == container:
            return str(c.get("image", ""))
    return ""


def _all_containers(pod: Object) -> list[Object]:
    spec = pod.get("spec") or {}
    return [
        c
        for c in (spec.get("containers") or [])
        + (spec.get("initContainers") or [])
        + (spec.get("ephemeralContainers") or [])
        if isinstance(c, dict)
    ]


def choose_container(pod: Object, requested: str | None) -> str:
    """Resolve the ``container`` parameter with kube-apiserver's rules and messages.

    (The ``kubectl.kubernetes.io/default-container`` annotation is applied by kubectl, not by
    the server, so it is not consulted here.)
    """
    name = (pod.get("metadata") or {}).get("name", "")
    containers = [
        c.get("name", "")
        for c in (pod.get("spec") or {}).get("containers") or []
        if isinstance(c, dict)
    ]
    every = [c.get("name", "") for c in _all_containers(pod)]
    if requested:
        if requested not in every:
            raise bad_request(f"container {requested} is not valid for pod {name}")
        return requested
    if len(containers) == 1:
        return containers[0]
    raise bad_request(
        f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
    )
