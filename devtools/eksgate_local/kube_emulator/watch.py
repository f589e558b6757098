"""Watch event selection, as kube's watch cache applies label and field selectors."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from .store import StoreEvent

Object = dict[str, Any]


def translate_events(
    events: Iterable[StoreEvent], matches: Callable[[Object | None], bool]
) -> Iterator[tuple[str, Object]]:
    """Yield (type, object) for the events a selector-filtered watch reports.

    An object modified into the selection is ADDED, one modified out of it is DELETED (with
    its last matching state), as kube-apiserver reports them.
    """
    for event in events:
        now_in = matches(event.obj)
        was_in = matches(event.old) if event.type == "MODIFIED" else False
        if event.type == "ADDED":
            if now_in:
                yield "ADDED", event.obj
        elif event.type == "DELETED":
            if now_in or matches(event.old):
                yield "DELETED", event.obj
        elif now_in and was_in:
            yield "MODIFIED", event.obj
        elif now_in:
            yield "ADDED", event.obj
        elif was_in:
            gone = dict(event.old or event.obj)
            gone["metadata"] = dict(
                gone.get("metadata") or {}, resourceVersion=str(event.resource_version)
            )
            yield "DELETED", gone
