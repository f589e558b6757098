"""In-memory object storage with a global resourceVersion and watch fan-out.

This layer knows nothing about kinds or validation: it stores dicts under
``(group, resource) -> (namespace, name)``, stamps ``metadata.resourceVersion`` from one
global counter (as etcd's revision) and publishes ADDED / MODIFIED / DELETED events to
watchers and to a bounded history, so a watch can resume from a resourceVersion.
Callers hold :attr:`ObjectStore.lock` for read-modify-write sequences.
"""

from __future__ import annotations

import builtins
import copy
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Object = dict[str, Any]
GroupResource = tuple[str, str]
ObjectKey = tuple[str, str]  # (namespace or "", name)


@dataclass(frozen=True)
class StoreEvent:
    """A change to one object. ``old`` is the previous state (None for ADDED)."""

    type: str  # ADDED | MODIFIED | DELETED
    group_resource: GroupResource
    obj: Object
    old: Object | None
    resource_version: int


class Watcher:
    """A subscription: events for one group-resource (optionally one namespace) are queued."""

    CLOSED = object()

    def __init__(self, group_resource: GroupResource, namespace: str | None) -> None:
        self.group_resource = group_resource
        self.namespace = namespace
        self.events: queue.Queue[Any] = queue.Queue()

    def wants(self, event: StoreEvent) -> bool:
        """Whether this watcher's scope covers ``event``."""
        if event.group_resource != self.group_resource:
            return False
        if self.namespace is None:
            return True
        return (event.obj.get("metadata") or {}).get("namespace") == self.namespace

    def close(self) -> None:
        """Wake the consumer and tell it the stream is over."""
        self.events.put(Watcher.CLOSED)


def object_key(obj: Object) -> ObjectKey:
    """The storage key of ``obj``."""
    meta = obj.get("metadata") or {}
    return (meta.get("namespace") or "", meta.get("name") or "")


class ObjectStore:
    """Thread-safe object storage. Returned objects are always deep copies."""

    def __init__(self, history_size: int = 4096) -> None:
        self.lock = threading.RLock()
        self._resource_version = 1
        self._objects: dict[GroupResource, dict[ObjectKey, Object]] = {}
        self._history: deque[StoreEvent] = deque(maxlen=history_size)
        self._watchers: set[Watcher] = set()
        self._closed = False

    @property
    def resource_version(self) -> int:
        """The latest resourceVersion handed out (what a list reports)."""
        with self.lock:
            return self._resource_version

    def oldest_replayable(self) -> int:
        """Watches may resume from this resourceVersion or later; older ones get 410."""
        with self.lock:
            if len(self._history) < (self._history.maxlen or 0):
                return 0
            return self._history[0].resource_version - 1

    def get(self, group_resource: GroupResource, namespace: str, name: str) -> Object | None:
        """The object, or None."""
        with self.lock:
            obj = self._objects.get(group_resource, {}).get((namespace or "", name))
            return copy.deepcopy(obj) if obj is not None else None

    def list(self, group_resource: GroupResource, namespace: str | None = None) -> list[Object]:
        """All objects (in one namespace if given), sorted like etcd keys: namespace, name."""
        with self.lock:
            bucket = self._objects.get(group_resource, {})
            keys = sorted(k for k in bucket if namespace is None or k[0] == namespace)
            return [copy.deepcopy(bucket[k]) for k in keys]

    def iter_all(self) -> Iterable[tuple[GroupResource, Object]]:
        """Every stored object (copies), for namespace deletion and garbage collection."""
        with self.lock:
            items = [
                (gr, copy.deepcopy(obj))
                for gr, bucket in self._objects.items()
                for obj in bucket.values()
            ]
        return items

    def put(self, group_resource: GroupResource, obj: Object) -> Object:
        """Store ``obj`` (create or replace), stamp a new resourceVersion, emit an event."""
        with self.lock:
            self._resource_version += 1
            rv = self._resource_version
            stored = copy.deepcopy(obj)
            stored.setdefault("metadata", {})["resourceVersion"] = str(rv)
            bucket = self._objects.setdefault(group_resource, {})
            key = object_key(stored)
            old = bucket.get(key)
            bucket[key] = stored
            self._publish(
                StoreEvent(
                    "MODIFIED" if old is not None else "ADDED",
                    group_resource,
                    copy.deepcopy(stored),
                    old,
                    rv,
                )
            )
            return copy.deepcopy(stored)

    def remove(self, group_resource: GroupResource, namespace: str, name: str) -> Object | None:
        """Delete and return the object (stamped with the deletion's resourceVersion)."""
        with self.lock:
            bucket = self._objects.get(group_resource, {})
            old = bucket.pop((namespace or "", name), None)
            if old is None:
                return None
            self._resource_version += 1
            rv = self._resource_version
            gone = copy.deepcopy(old)
            gone["metadata"]["resourceVersion"] = str(rv)
            self._publish(StoreEvent("DELETED", group_resource, copy.deepcopy(gone), old, rv))
            return gone

    def _publish(self, event: StoreEvent) -> None:
        self._history.append(event)
        for watcher in list(self._watchers):
            if watcher.wants(event):
                watcher.events.put(event)

    def subscribe(
        self,
        group_resource: GroupResource,
        namespace: str | None,
        since: int | None,
        *,
        initial_filter: Callable[[Object], bool] | None = None,
    ) -> tuple[builtins.list[StoreEvent], Watcher]:
        """Register a watcher atomically with its starting point.

        ``since`` None means "current state first": synthetic ADDED events for every existing
        object. Otherwise the retained history after ``since`` is replayed. The caller must
        check :meth:`oldest_replayable` first and answer 410 for a too-old ``since``.
        """
        with self.lock:
            watcher = Watcher(group_resource, namespace)
            if self._closed:
                watcher.close()
                return [], watcher
            if since is None:
                initial = [
                    StoreEvent(
                        "ADDED", group_resource, obj, None, int(obj["metadata"]["resourceVersion"])
                    )
                    for obj in self.list(group_resource, namespace)
                    if initial_filter is None or initial_filter(obj)
                ]
            else:
                initial = [
                    e for e in self._history if e.resource_version > since and watcher.wants(e)
                ]
            self._watchers.add(watcher)
            return initial, watcher

    def unsubscribe(self, watcher: Watcher) -> None:
        """Stop delivering events to ``watcher``."""
        with self.lock:
            self._watchers.discard(watcher)

    def close(self) -> None:
        """End every watch (server shutdown); later subscriptions end immediately."""
        with self.lock:
            self._closed = True
            for watcher in list(self._watchers):
                watcher.close()
            self._watchers.clear()
