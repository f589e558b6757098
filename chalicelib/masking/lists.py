"""Masking a list answer one item at a time, so memory stays close to the answer's size.

Decoded into Python objects, a 5 MB PodList takes about 8 times its size. Here the answer is
split with msgspec into its own fields and its items, each item a view of the answer's bytes
(nothing copied), and each item is decoded, masked and encoded on its own. The masking is the
whole-document masking's (``documents`` decides what a list and its items are masked as), so
the output is the same bytes; only one item is ever decoded at a time.

Whatever this cannot split (not an object, not a list answer, JSON msgspec refuses, such as a
lone surrogate escape) is left to the whole-document path, which decides it as before.
"""

from __future__ import annotations

import io
from typing import Any

from chalicelib.masking.documents import (
    is_list_answer,
    list_item_kind,
    make_context,
    mask_list_fields,
    mask_list_item,
)
from chalicelib.masking.jsoncodec import dumps, has_long_number, loads
from chalicelib.masking.settings import MaskingSettings

_decoders: tuple[Any, Any, type[Exception]] | None = None


def _split() -> tuple[Any, Any, type[Exception]]:
    """msgspec's decoders for an object of raw fields and a list of raw items (imported on
    first use: the CLI imports masking for its names only)."""
    global _decoders
    if _decoders is None:
        import msgspec

        _decoders = (
            msgspec.json.Decoder(dict[str, msgspec.Raw]),
            msgspec.json.Decoder(list[msgspec.Raw]),
            msgspec.MsgspecError,
        )
    return _decoders


def mask_list_answer(body: bytes, settings: MaskingSettings, resource_kind: str) -> bytes | None:
    """The masked answer, re-encoded, when ``body`` is a list answer (``items`` an array);
    None when it is anything else, for the caller to mask whole."""
    fields_decoder, items_decoder, split_error = _split()
    try:
        raw_fields = fields_decoder.decode(body)
        raw_items = raw_fields.pop("items", None)
        if raw_items is None:
            return None
        fields = {key: loads(bytes(raw)) for key, raw in raw_fields.items()}
        if not is_list_answer(fields):
            return None
        items = items_decoder.decode(raw_items)
    except split_error:
        return None
    long_numbers = has_long_number(body)
    kind = fields.get("kind")
    item_kind = list_item_kind(kind if isinstance(kind, str) else "", resource_kind)
    # A Secret's strings are checked one by one (its data is replaced whole), so a SecretList
    # skips the trigger search over megabytes of data, as a request for secrets does.
    ctx = make_context(settings, body, None, "Secret" if item_kind == "Secret" else resource_kind)
    # Written into one growing buffer: a list of pieces joined at the end would hold the
    # output twice.
    out = io.BytesIO()
    try:
        envelope = dumps(mask_list_fields(fields, ctx))
        out.write(envelope[:-1])
        out.write(b',"items":[' if fields else b'"items":[')
        for index, raw in enumerate(items):
            if index:
                out.write(b",")
            # One expression, so no name keeps an item alive while the next is decoded.
            out.write(
                dumps(mask_list_item(loads(bytes(raw), long_numbers=long_numbers), ctx, item_kind))
            )
    except RecursionError:
        raise ValueError("the document is nested too deeply to mask") from None
    out.write(b"]}")
    return out.getvalue()
