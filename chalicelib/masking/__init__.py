"""Masking of responses before they leave the gateway: Secret data, tokens, credential patterns.

Pure functions over JSON and text. Objects are masked by what they really are: the kind the
request resolved to (``resource_kind``, from ``kind_for_resource``), the kind the envelope
implies, or their own ``kind``; a claim inside an object (its last-applied annotation) never
downgrades that. A Secret is masked wherever it appears: a single object, any list, a Table
row, a watch event, PartialObjectMetadata, an embedded manifest, or the
``last-applied-configuration`` annotation kubectl leaves behind.

Secret data masking is always on. Pattern masking (credential-shaped text and values under
credential-named keys in logs, ConfigMaps including ``binaryData``, env values, annotations and
any other string) covers every family in ``PATTERN_NAMES`` unless a policy excepts some. A
pattern replaces only the secret part with ``MASK`` and keeps the key around it, so masked
output stays readable and, for JSON, structurally intact: patterns run on decoded string
values, never on serialized JSON.

Anything that cannot be understood is withheld rather than passed through: a Secret whose
``data`` is not a mapping, an unparseable last-applied annotation, an unparseable watch line,
a ``binaryData`` value that is not text (unless the policy keeps those).
"""

from __future__ import annotations

import gc
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from chalicelib.masking.documents import (
    LAST_APPLIED_ANNOTATION,
    MASKED_DATA_VALUE,
    make_context,
    mask_value,
)
from chalicelib.masking.jsoncodec import dumps, has_long_number, loads
from chalicelib.masking.kinds import kind_for_resource
from chalicelib.masking.lists import mask_list_answer
from chalicelib.masking.scanner import MASK, scanner_for
from chalicelib.masking.settings import DEFAULT_SETTINGS, MaskingSettings
from chalicelib.masking.vocabulary import PATTERN_NAMES

__all__ = [
    "DEFAULT_SETTINGS",
    "LAST_APPLIED_ANNOTATION",
    "MASK",
    "MASKED_DATA_VALUE",
    "PATTERN_NAMES",
    "WITHHELD_EVENT",
    "MaskingSettings",
    "kind_for_resource",
    "mask_document",
    "mask_json",
    "mask_text",
    "mask_watch_stream",
]

# Written in place of a watch stream line that could not be parsed (and so not masked).
WITHHELD_EVENT: dict[str, Any] = {
    "type": "ERROR",
    "object": {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "eksgate withheld a watch event it could not parse, so could not mask",
        "reason": "InternalError",
        "code": 500,
    },
}
_WITHHELD_LINE = (json.dumps(WITHHELD_EVENT, separators=(",", ":")) + "\n").encode("ascii")


def mask_text(text: str, settings: MaskingSettings = DEFAULT_SETTINGS) -> str:
    """Mask the configured credential patterns in free text (``pods/log``, any string value).

    The text is taken as the start of what its reader sees: base64 key lines opening it are
    masked as the rest of a private key cut off by a log window (``tailLines``, ``sinceTime``).
    """
    return scanner_for(settings.families).mask(text)


def mask_document(
    doc: Any, settings: MaskingSettings = DEFAULT_SETTINGS, *, resource_kind: str = ""
) -> Any:
    """Return a masked version of a decoded Kubernetes JSON response; ``doc`` is not modified
    (parts with nothing to mask are shared between ``doc`` and the result).

    Handles single objects, ``*List`` and generic ``List`` documents, ``Table`` (any
    ``includeObject``), ``PartialObjectMetadata`` (and its List), watch events, and anything
    nested inside them. ``resource_kind`` is the kind of the objects the request asked for
    (``kind_for_resource``); "" when unknown.
    """
    with _no_cycle_collection():
        return mask_value(doc, make_context(settings, None, doc, resource_kind), resource_kind)


def mask_json(
    body: bytes, settings: MaskingSettings = DEFAULT_SETTINGS, *, resource_kind: str = ""
) -> bytes:
    """Mask a JSON response body and return it re-encoded (compact, UTF-8).

    The fast path for the gateway: it looks for credentials in the raw bytes, and masks a
    list one item at a time (``lists``), so a large answer is never decoded whole.
    Raises ``ValueError`` when the body is not JSON (or is nested too deeply to mask).
    """
    with _no_cycle_collection():
        return _mask_json(body, settings, resource_kind)


def _mask_json(body: bytes, settings: MaskingSettings, resource_kind: str) -> bytes:
    # Everything decoded here is freed before this returns, while the cycle collector is
    # paused, so it never walks the decoded document when it resumes.
    streamed = mask_list_answer(body, settings, resource_kind)
    if streamed is not None:
        return streamed
    doc = loads(body)
    try:
        ctx = make_context(settings, body, doc, resource_kind)
        return dumps(mask_value(doc, ctx, resource_kind))
    except RecursionError:
        raise ValueError("the document is nested too deeply to mask") from None


def mask_watch_stream(
    chunk: bytes, settings: MaskingSettings = DEFAULT_SETTINGS, *, resource_kind: str = ""
) -> bytes:
    """Mask a newline-delimited JSON watch stream, one event per line.

    A line that is not a JSON object (cut off, not UTF-8, not JSON) is replaced by an ERROR
    event saying it was withheld: it can neither be masked nor passed on. ``chunk`` must hold
    whole lines; a trailing partial line is treated as malformed. ``resource_kind`` is the
    kind of the watched objects (``kind_for_resource``).
    """
    with _no_cycle_collection():
        return _mask_watch_lines(chunk, settings, resource_kind)


def _mask_watch_lines(chunk: bytes, settings: MaskingSettings, resource_kind: str) -> bytes:
    # One trigger search over the whole chunk serves every line (strings never span lines);
    # a chunk with a malformed line falls back to one search per line.
    try:
        shared = make_context(settings, chunk, None, resource_kind)
    except ValueError:
        shared = None
    long_numbers = has_long_number(chunk)
    out = io.BytesIO()
    for line in chunk.split(b"\n"):
        if not line.strip():
            continue
        try:
            event = loads(line, long_numbers=long_numbers)
            if not isinstance(event, dict):
                raise ValueError("a watch event is a JSON object")
            ctx = (
                shared if shared is not None else make_context(settings, line, event, resource_kind)
            )
            masked = dumps(mask_value(event, ctx, resource_kind))
        except (ValueError, RecursionError):  # ValueError covers bad UTF-8 and bad JSON
            # One bad (or absurdly nested) line must not end the stream, nor pass unmasked.
            out.write(_WITHHELD_LINE)
            continue
        out.write(masked)
        out.write(b"\n")
    return out.getvalue()


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Decoded JSON has no reference cycles, yet building hundreds of thousands of objects
    triggers the cycle collector over and over; pause it while one answer is masked."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
