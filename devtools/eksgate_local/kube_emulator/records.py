"""Call records: who (which principal) made which request, for tests to assert on."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class CallRecord:
    """One request as the emulator saw it. ``verb`` is the Kubernetes (RBAC) verb."""

    principal: str | None
    method: str
    path: str
    query: dict[str, list[str]]
    verb: str
    status: int
    group: str | None = None
    resource: str | None = None
    subresource: str | None = None
    namespace: str | None = None
    name: str | None = None
    dry_run: bool = False
    user_agent: str = ""
    audit_id: str = ""  # the Audit-ID it answered with: the client's, or one it made
    timestamp: float = field(default_factory=time.time)


class CallLog:
    """A thread-safe, append-only list of :class:`CallRecord`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[CallRecord] = []

    def append(self, record: CallRecord) -> None:
        """Add one record."""
        with self._lock:
            self._records.append(record)

    def snapshot(self) -> list[CallRecord]:
        """A copy of the records so far, oldest first."""
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        """Forget every record."""
        with self._lock:
            self._records.clear()
