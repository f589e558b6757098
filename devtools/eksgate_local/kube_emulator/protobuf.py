"""Kubernetes protobuf request bodies (``application/vnd.kubernetes.protobuf``), decoded to JSON.

Current kubectl sends typed objects as protobuf (``create configmap``, ``create namespace``,
``auth can-i``, ``auth whoami``). kube-apiserver wraps them in the ``k8s\\x00`` envelope, a
``runtime.Unknown`` holding the type and the object's bytes. This module decodes the protobuf
wire format itself and knows the field numbers of the kinds the emulator's seed and tests use
(from k8s.io/api ``generated.proto``). Go's protobuf encoder writes every non-pointer field,
zero or not, so an unknown field that holds a zero value is skipped; an unknown field with a
value is refused (415) rather than silently dropped.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from .errors import ApiError

CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"

# field number -> (JSON name, kind, repeated); kind is a wire kind or a nested schema
Schema = dict[int, tuple[str, Any, bool]]
STRING, BYTES, INT, BOOL, TIME, STRING_MAP, BYTES_MAP = (
    "string",
    "bytes",
    "int",
    "bool",
    "time",
    "string_map",
    "bytes_map",
)

OWNER_REFERENCE: Schema = {
    1: ("kind", STRING, False),
    3: ("name", STRING, False),
    4: ("uid", STRING, False),
    5: ("apiVersion", STRING, False),
    6: ("controller", BOOL, False),
    7: ("blockOwnerDeletion", BOOL, False),
}
OBJECT_META: Schema = {
    1: ("name", STRING, False),
    2: ("generateName", STRING, False),
    3: ("namespace", STRING, False),
    4: ("selfLink", STRING, False),
    5: ("uid", STRING, False),
    6: ("resourceVersion", STRING, False),
    7: ("generation", INT, False),
    8: ("creationTimestamp", TIME, False),
    9: ("deletionTimestamp", TIME, False),
    10: ("deletionGracePeriodSeconds", INT, False),
    11: ("labels", STRING_MAP, False),
    12: ("annotations", STRING_MAP, False),
    13: ("ownerReferences", OWNER_REFERENCE, True),
    14: ("finalizers", STRING, True),
}
CONFIG_MAP: Schema = {
    1: ("metadata", OBJECT_META, False),
    2: ("data", STRING_MAP, False),
    3: ("binaryData", BYTES_MAP, False),
    4: ("immutable", BOOL, False),
}
NAMESPACE: Schema = {
    1: ("metadata", OBJECT_META, False),
    2: ("spec", {1: ("finalizers", STRING, True)}, False),
    3: ("status", {1: ("phase", STRING, False)}, False),
}
RESOURCE_ATTRIBUTES: Schema = {
    1: ("namespace", STRING, False),
    2: ("verb", STRING, False),
    3: ("group", STRING, False),
    4: ("version", STRING, False),
    5: ("resource", STRING, False),
    6: ("subresource", STRING, False),
    7: ("name", STRING, False),
}
SELF_SUBJECT_ACCESS_REVIEW: Schema = {
    1: ("metadata", OBJECT_META, False),
    2: (
        "spec",
        {
            1: ("resourceAttributes", RESOURCE_ATTRIBUTES, False),
            2: (
                "nonResourceAttributes",
                {1: ("path", STRING, False), 2: ("verb", STRING, False)},
                False,
            ),
        },
        False,
    ),
    3: ("status", {}, False),
}
SELF_SUBJECT_REVIEW: Schema = {1: ("metadata", OBJECT_META, False), 2: ("status", {}, False)}

KINDS: dict[tuple[str, str], Schema] = {
    ("v1", "ConfigMap"): CONFIG_MAP,
    ("v1", "Namespace"): NAMESPACE,
    ("authorization.k8s.io/v1", "SelfSubjectAccessReview"): SELF_SUBJECT_ACCESS_REVIEW,
    ("authentication.k8s.io/v1", "SelfSubjectReview"): SELF_SUBJECT_REVIEW,
}


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


def fields(data: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, value) in order: varints as int, length-delimited as bytes."""
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
    except ApiError:
        return False  # not a message: a non-empty string or bytes


def _scalar(kind: str, value: Any) -> Any:
    if kind == STRING:
        return bytes(value).decode("utf-8")
    if kind == BYTES:
        return base64.b64encode(value).decode()
    if kind == BOOL:
        return bool(value)
    if kind == INT:
        return value - (1 << 64) if value >= 1 << 63 else value
    if kind == TIME:
        parts = {n: v for n, _, v in fields(value)}
        if not parts.get(1):
            return None
        moment = datetime.fromtimestamp(parts[1], UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    raise AssertionError(kind)


def decode_message(data: bytes, schema: Schema, where: str) -> dict[str, Any]:
    """One message as the JSON object kube would accept; zero values left out, as JSON does."""
    out: dict[str, Any] = {}
    for number, _wire, value in fields(data):
        if number not in schema:
            if _is_zero(value):
                continue  # a field Go writes even when empty
            raise _refuse(f"the emulator does not know field {number} of {where}")
        name, kind, repeated = schema[number]
        if kind in (STRING_MAP, BYTES_MAP):
            entry = {n: v for n, _, v in fields(value)}
            key = bytes(entry.get(1, b"")).decode("utf-8")
            raw = entry.get(2, b"")
            out.setdefault(name, {})[key] = _scalar(STRING if kind == STRING_MAP else BYTES, raw)
            continue
        if isinstance(kind, dict):
            decoded: Any = decode_message(value, kind, f"{where}.{name}")
            if not decoded and not repeated:
                continue
        else:
            decoded = _scalar(kind, value)
            if decoded in (None, "", 0, False) and not repeated:
                continue
        if repeated:
            out.setdefault(name, []).append(decoded)
        else:
            out[name] = decoded
    return out


def decode_object(body: bytes) -> dict[str, Any]:
    """A protobuf request body (envelope included) as a JSON object with apiVersion and kind."""
    if not body.startswith(MAGIC):
        raise ApiError(400, "BadRequest", "protobuf body: missing the k8s envelope")
    envelope = {n: v for n, _, v in fields(body[len(MAGIC) :])}
    type_meta = {n: bytes(v).decode("utf-8") for n, _, v in fields(envelope.get(1, b""))}
    api_version, kind = type_meta.get(1, ""), type_meta.get(2, "")
    if envelope.get(3):
        raise _refuse("compressed (contentEncoding) bodies are not supported")
    schema = KINDS.get((api_version, kind))
    if schema is None:
        raise _refuse(f"the emulator does not decode {kind or 'this kind'} ({api_version})")
    obj = decode_message(envelope.get(2, b""), schema, kind)
    return {"apiVersion": api_version, "kind": kind, **obj}
