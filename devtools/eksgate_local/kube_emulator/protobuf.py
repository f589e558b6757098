"""Kubernetes protobuf request bodies (``application/vnd.kubernetes.protobuf``), decoded to JSON.

Current kubectl sends typed objects as protobuf (``create deployment``, ``create configmap``,
``create secret``, ``create namespace``, ``auth can-i``, ``auth whoami``). kube-apiserver wraps
them in the ``k8s\\x00`` envelope, a ``runtime.Unknown`` holding the type and the object's
bytes. This module decodes the protobuf wire format itself, by the field tables in
``protobuf_kinds`` (taken from k8s.io/api's ``generated.proto``).

Go's encoder writes every non-pointer field, zero or not, and a pointer field only when it is
set, so a field's presence means something only for pointers: ``replicas: 0`` is written and
kept, while an empty ``restartPolicy`` is left out as JSON's omitempty would. A field the
tables do not know, or know but do not decode, is refused (415) whenever it could carry a
value: the emulator never builds an object that differs from the one the client sent.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from .errors import ApiError
from .protobuf_kinds import (
    BOOL,
    BYTES,
    BYTES_MAP,
    INT,
    INT_OR_STRING,
    KINDS,
    MANY,
    POINTER,
    QUANTITY_MAP,
    REFUSED,
    STRING,
    STRING_MAP,
    TIME,
    Schema,
)

CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"
MAPS = (STRING_MAP, BYTES_MAP, QUANTITY_MAP)


def _refuse(message: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType", f"protobuf body: {message}; send JSON instead")


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise ApiError(400, "BadRequest", "protobuf body: truncated varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def fields(data: Any) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) in order: varints as int, length-delimited as bytes."""
    if not isinstance(data, bytes):
        raise ApiError(400, "BadRequest", "protobuf body: a number where a message belongs")
    found: list[tuple[int, int, Any]] = []
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        value: int | bytes
        if wire == 0:
            value, at = _varint(data, at)
        elif wire == 2:
            size, at = _varint(data, at)
            if at + size > len(data):
                raise ApiError(400, "BadRequest", "protobuf body: truncated field")
            value, at = data[at : at + size], at + size
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            if at + width > len(data):
                raise ApiError(400, "BadRequest", "protobuf body: truncated field")
            value, at = int.from_bytes(data[at : at + width], "little"), at + width
        else:
            raise ApiError(400, "BadRequest", f"protobuf body: unsupported wire type {wire}")
        found.append((number, wire, value))
    return found


def _is_zero(value: Any) -> bool:
    """0, empty, or a message whose every field is zero (Go writes empty structs whole)."""
    if value in (0, b""):
        return True
    if not isinstance(value, bytes):
        return False
    try:
        return all(_is_zero(inner) for _, _, inner in fields(value))
    except (ApiError, RecursionError):
        return False  # not a message (a non-empty string or bytes), or nested beyond reason


def _expect(wire: int, kind: Any, where: str) -> None:
    """A varint where a varint belongs, bytes where bytes belong: else the body is not this kind."""
    varint = kind in (INT, BOOL)
    if wire != (0 if varint else 2):
        raise ApiError(400, "BadRequest", f"protobuf body: {where} has the wrong wire type")


def _text(value: Any, where: str) -> str:
    if not isinstance(value, bytes):
        raise ApiError(400, "BadRequest", f"protobuf body: {where} is not a string")
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "BadRequest", f"protobuf body: {where} is not UTF-8") from exc


def _scalar(kind: str, value: Any, where: str) -> Any:
    if kind == STRING:
        return _text(value, where)
    if kind == BYTES:
        return base64.b64encode(value).decode()
    if kind == BOOL:
        return bool(value)
    if kind == INT:
        return value - (1 << 64) if value >= 1 << 63 else value
    if kind == TIME:
        seconds = {n: v for n, _, v in fields(value)}.get(1, 0)
        if not isinstance(seconds, int) or not 0 <= seconds < 253402300800:  # before year 10000
            raise ApiError(400, "BadRequest", f"protobuf body: {where} is not a time")
        if not seconds:
            return None
        moment = datetime.fromtimestamp(seconds, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind == INT_OR_STRING:
        parts = {n: v for n, _, v in fields(value)}
        if parts.get(1, 0) == 1:
            return _text(parts.get(3, b""), where)
        number = parts.get(2, 0)
        if not isinstance(number, int):
            raise ApiError(400, "BadRequest", f"protobuf body: {where} is not a number")
        return _scalar(INT, number, where)
    raise AssertionError(kind)


def _map_entry(kind: str, value: bytes, where: str) -> tuple[str, Any]:
    entry = {n: v for n, _, v in fields(value)}
    key = _text(entry.get(1, b""), where)
    raw = entry.get(2, b"")
    if kind == STRING_MAP:
        return key, _text(raw, where)
    if kind == BYTES_MAP:
        return key, _scalar(BYTES, raw, where)
    quantity = {n: v for n, _, v in fields(raw)}  # resource.Quantity: 1 = its string form
    return key, _text(quantity.get(1, b""), where)


def decode_message(data: bytes, schema: Schema, where: str) -> dict[str, Any]:
    """One message as the JSON object kube would accept: what was sent, nothing else."""
    out: dict[str, Any] = {}
    for number, wire, value in fields(data):
        if number not in schema:
            raise _refuse(f"the emulator does not know field {number} of {where}")
        name, kind, mode = schema[number]
        path = f"{where}.{name}"
        if kind == REFUSED:
            if mode == POINTER or mode == MANY or not _is_zero(value):
                raise _refuse(f"the emulator does not decode {path}")
            continue  # a non-pointer struct Go writes even when empty
        _expect(wire, kind if not isinstance(kind, dict) else "message", path)
        if kind in MAPS:
            key, decoded = _map_entry(kind, value, path)
            out.setdefault(name, {})[key] = decoded
            continue
        if isinstance(kind, dict):
            decoded = decode_message(value, kind, path)
            if not decoded and mode not in (POINTER, MANY):
                continue  # an empty non-pointer struct: what JSON's omitempty leaves out
        else:
            decoded = _scalar(kind, value, path)
            if decoded in (None, "", 0, False) and mode not in (POINTER, MANY):
                continue  # Go wrote a non-pointer zero; absent means the same
        if mode == MANY:
            out.setdefault(name, []).append(decoded)
        else:
            out[name] = decoded
    return out


def decode_object(body: bytes) -> dict[str, Any]:
    """A protobuf request body (envelope included) as a JSON object with apiVersion and kind."""
    if not body.startswith(MAGIC):
        raise ApiError(400, "BadRequest", "protobuf body: missing the k8s envelope")
    envelope = {n: v for n, _, v in fields(body[len(MAGIC) :])}
    type_meta = {n: _text(v, "typeMeta") for n, _, v in fields(envelope.get(1, b""))}
    api_version, kind = type_meta.get(1, ""), type_meta.get(2, "")
    if envelope.get(3):
        raise _refuse("compressed (contentEncoding) bodies are not supported")
    schema = KINDS.get((api_version, kind))
    if schema is None:
        raise _refuse(f"the emulator does not decode {kind or 'this kind'} ({api_version})")
    obj = decode_message(envelope.get(2, b""), schema, kind)
    return {"apiVersion": api_version, "kind": kind, **obj}
