"""Streaming responses: followed pod logs and bounded watches (chunked transfer encoding).

Both end by themselves: after ``timeoutSeconds`` (a watch parameter; also honoured for
``follow=true`` logs) capped at the emulator's ``watch_timeout_cap``, or at shutdown.
"""

from __future__ import annotations

import json
import queue
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from .api import Api, ListOptions, parse_list_options
from .discovery import ResourceInfo
from .errors import ApiError, bad_request, failure_status, method_not_allowed
from .logs import LogLine, choose_container, container_image, follow_line
from .negotiation import negotiate_resource_format
from .selectors import parse_field_selector
from .store import Watcher
from .tables import partial_object_metadata, to_table
from .watch import translate_events

if TYPE_CHECKING:
    from .emulator import KubeEmulator

Object = dict[str, Any]


def query_one(query: dict[str, list[str]], name: str) -> str | None:
    """The last value of query parameter ``name`` (kube uses the last one too)."""
    values = query.get(name)
    return values[-1] if values else None


def query_flag(query: dict[str, list[str]], name: str) -> bool:
    """A boolean query parameter (``true``/``1``)."""
    return (query_one(query, name) or "").lower() in ("true", "1")


def _int_param(query: dict[str, list[str]], name: str) -> int | None:
    raw = query_one(query, name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise bad_request(f"{name}: Invalid value: {raw!r}: must be an integer") from exc


class StreamingMixin:
    """Log and watch handlers, mixed into the request handler.

    Relies on the handler's ``emulator``, ``headers``, ``_query``, ``_verb`` and its
    ``_send_bytes`` / ``_start_stream`` / ``_chunk`` / ``_end_stream`` writers.
    """

    headers: Any
    _query: dict[str, list[str]]
    _verb: str

    @property
    def emulator(self) -> KubeEmulator:  # the handler's: its server's emulator
        raise NotImplementedError

    def _send_bytes(self, code: int, data: bytes, content_type: str) -> None:
        raise NotImplementedError

    def _start_stream(self, content_type: str) -> None:
        raise NotImplementedError

    def _chunk(self, data: bytes) -> None:
        raise NotImplementedError

    def _end_stream(self) -> None:
        raise NotImplementedError

    # ----- pod logs ----------------------------------------------------------------------

    def _serve_log(self, namespace: str, name: str) -> None:
        self._verb = "get"
        emulator = self.emulator
        pods = emulator.discovery.resource("", "v1", "pods")
        assert pods is not None
        pod = emulator.api.get(pods, namespace, name)
        query = self._query
        container = choose_container(pod, query_one(query, "container"))
        if query_flag(query, "previous"):
            raise bad_request(
                f'previous terminated container "{container}" in pod "{name}" not found'
            )
        lines = emulator.logs.lines_for(pod, container)
        tail = _int_param(query, "tailLines")
        limit_bytes = _int_param(query, "limitBytes")
        since_seconds = _int_param(query, "sinceSeconds")
        since_time = query_one(query, "sinceTime")
        since: datetime | None = None
        if since_seconds is not None:
            since = datetime.now(UTC) - timedelta(seconds=since_seconds)
        elif since_time:
            try:
                since = datetime.fromisoformat(since_time.replace("Z", "+00:00"))
            except ValueError as exc:
                raise bad_request(f"sinceTime: Invalid value: {since_time!r}") from exc
        if tail is not None and tail < 0:
            raise bad_request("tailLines: Invalid value: must be greater than or equal to 0")
        if since is not None:
            lines = [line for line in lines if line.timestamp >= since]
        if tail is not None:
            lines = lines[len(lines) - tail :] if tail else []
        timestamps = query_flag(query, "timestamps")
        text = "".join(line.render(timestamps) for line in lines).encode()
        if limit_bytes is not None:
            text = text[: max(limit_bytes, 0)]
        if not query_flag(query, "follow"):
            self._send_bytes(200, text, "text/plain")
            return
        duration = emulator.stream_duration(query_one(query, "timeoutSeconds"))
        deadline = time.monotonic() + duration
        sent = len(text)
        image = container_image(pod, container)
        self._start_stream("text/plain")
        self._chunk(text)
        while not emulator.stopping.wait(min(1.0, max(deadline - time.monotonic(), 0))):
            if time.monotonic() >= deadline or (limit_bytes is not None and sent >= limit_bytes):
                break
            now = datetime.now(UTC)
            data = (
                LogLine(now, follow_line(image, now, emulator.logs.next_seq()))
                .render(timestamps)
                .encode()
            )
            if limit_bytes is not None:
                data = data[: max(limit_bytes - sent, 0)]
            sent += len(data)
            self._chunk(data)
        self._end_stream()

    # ----- watch -------------------------------------------------------------------------

    def _serve_watch(self, info: ResourceInfo, ns: str | None, name: str | None) -> None:
        emulator = self.emulator
        if "watch" not in info.verbs:
            raise method_not_allowed(
                "the server does not allow this method on the requested resource"
            )
        query = self._query
        fmt = negotiate_resource_format(self.headers.get("Accept"))
        options = parse_list_options(info, query)
        field_selector = options.field_selector
        if name is not None:
            # Legacy /watch/…/{name} == fieldSelector=metadata.name={name}
            field_selector = parse_field_selector(
                ",".join(
                    filter(None, [f"metadata.name={name}", query_one(query, "fieldSelector")])
                ),
                info.group,
                info.name,
            )
        options = ListOptions(options.label_selector, field_selector)

        def matches(obj: Object | None) -> bool:
            return (
                obj is not None
                and options.label_selector.matches((obj.get("metadata") or {}).get("labels"))
                and options.field_selector.matches(obj)
            )

        rv_param = query_one(query, "resourceVersion")
        since: int | None = None
        if rv_param not in (None, "", "0"):
            try:
                since = int(rv_param)
            except ValueError as exc:
                raise bad_request(f"invalid resource version: {rv_param}") from exc
        send_initial = query_flag(query, "sendInitialEvents")
        if send_initial:
            if query_one(query, "resourceVersionMatch") != "NotOlderThan":
                raise ApiError(
                    422,
                    "Invalid",
                    "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                )
            since = None
        include = query_one(query, "includeObject") or "Metadata"
        if include not in ("None", "Metadata", "Object"):
            raise bad_request(f'includeObject: Unsupported value: "{include}"')
        bookmarks = query_flag(query, "allowWatchBookmarks")
        duration = emulator.stream_duration(query_one(query, "timeoutSeconds"))
        deadline = time.monotonic() + duration

        store = emulator.store
        with store.lock:
            oldest = store.oldest_replayable()
            expired = since is not None and since < oldest
            if not expired:
                initial, watcher = store.subscribe(
                    info.group_resource, ns, since, initial_filter=matches
                )
        if expired:
            # kube answers 200 and reports the expiry as the stream's only event.
            self._start_stream("application/json")
            status = failure_status(410, "Expired", f"too old resource version: {since} ({oldest})")
            self._chunk(json.dumps({"type": "ERROR", "object": status}).encode() + b"\n")
            self._end_stream()
            return
        first = [True]

        def emit(event_type: str, obj: Object) -> None:
            obj = Api.as_version(info, obj)
            if fmt.kind == "table":
                payload = to_table(
                    info.group_resource,
                    [obj],
                    version=fmt.version,
                    include_object=include,
                    include_columns=first[0],
                )
                first[0] = False
            elif fmt.kind == "metadata":
                payload = partial_object_metadata(obj, fmt.version)
            else:
                payload = obj
            self._chunk(
                json.dumps({"type": event_type, "object": payload}, separators=(",", ":")).encode()
                + b"\n"
            )

        def bookmark(annotations: dict[str, str] | None = None) -> None:
            meta: Object = {"resourceVersion": str(store.resource_version)}
            if annotations:
                meta["annotations"] = annotations
            self._chunk(
                json.dumps(
                    {
                        "type": "BOOKMARK",
                        "object": {
                            "kind": info.kind,
                            "apiVersion": info.api_version,
                            "metadata": meta,
                        },
                    }
                ).encode()
                + b"\n"
            )

        try:
            self._start_stream("application/json")
            for event in translate_events(initial, matches):
                emit(*event)
            if send_initial:
                bookmark({"k8s.io/initial-events-end": "true"})
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = watcher.events.get(timeout=remaining)
                except queue.Empty:  # the watch timed out
                    break
                if item is Watcher.CLOSED:
                    break
                for event in translate_events([item], matches):
                    emit(*event)
            if bookmarks and not emulator.stopping.is_set():
                bookmark()
            self._end_stream()
        finally:
            store.unsubscribe(watcher)
