"""The body of an access review as kubectl sends it: JSON, or (kubectl 1.32+) protobuf.

``kubectl auth can-i`` posts a SelfSubjectAccessReview (``--list``: a SelfSubjectRulesReview)
as ``application/vnd.kubernetes.protobuf``. The gateway answers those from the policy, so it
must read them; this reads exactly the fields the review has and nothing else, into the same
dict the JSON form gives (``access_review.access_review`` / ``rules_review`` take that).

Kubernetes protobuf is a 4-byte magic ``k8s\\0`` and a ``runtime.Unknown`` (1: typeMeta
{1: apiVersion, 2: kind}, 2: raw, 3: contentEncoding, 4: contentType); ``raw`` is the object
(1: metadata, 2: spec, 3: status). SelfSubjectAccessReviewSpec is {1: resourceAttributes,
2: nonResourceAttributes}; ResourceAttributes {1: namespace, 2: verb, 3: group, 4: version,
5: resource, 6: subresource, 7: name}; NonResourceAttributes {1: path, 2: verb};
SelfSubjectRulesReviewSpec {1: namespace}. (k8s.io/api/authorization/v1/generated.proto.)
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib.errors import BadRequest

PROTOBUF = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"
MAX_REVIEW_BYTES = 64 * 1024
RESOURCE_FIELDS = {
    1: "namespace",
    2: "verb",
    3: "group",
    4: "version",
    5: "resource",
    6: "subresource",
    7: "name",
}
NON_RESOURCE_FIELDS = {1: "path", 2: "verb"}


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if at >= len(data) or shift > 63:
            raise BadRequest("malformed protobuf body")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def fields(data: bytes) -> dict[int, bytes]:
    """A message's length-delimited fields by number (the last occurrence wins, as in proto).

    Other wire types are skipped; a truncated or malformed message is a BadRequest.
    """
    found: dict[int, bytes] = {}
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, at = _varint(data, at)
        elif wire == 2:
            length, at = _varint(data, at)
            if at + length > len(data):
                raise BadRequest("malformed protobuf body")
            found[number] = data[at : at + length]
            at += length
        elif wire in (1, 5):
            at += 8 if wire == 1 else 4
        else:
            raise BadRequest("malformed protobuf body")
    if at != len(data):
        raise BadRequest("malformed protobuf body")
    return found


def _text(value: bytes) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("a review field is not UTF-8") from None


def _strings(message: bytes, names: dict[int, str]) -> dict[str, str]:
    values = fields(message)
    return {name: _text(values.get(number, b"")) for number, name in names.items()}


def _from_protobuf(body: bytes) -> dict[str, Any]:
    if not body.startswith(MAGIC):
        raise BadRequest("a protobuf body must start with the Kubernetes magic number")
    unknown = fields(body[len(MAGIC) :])
    type_meta = fields(unknown.get(1, b""))
    api_version, kind = _text(type_meta.get(1, b"")), _text(type_meta.get(2, b""))
    if unknown.get(3):
        raise BadRequest("encoded protobuf bodies are not supported")
    spec_bytes = fields(unknown.get(2, b"")).get(2, b"")
    spec: dict[str, Any] = {}
    if kind == "SelfSubjectAccessReview":
        parts = fields(spec_bytes)
        if 1 in parts:
            spec["resourceAttributes"] = _strings(parts[1], RESOURCE_FIELDS)
        if 2 in parts:
            spec["nonResourceAttributes"] = _strings(parts[2], NON_RESOURCE_FIELDS)
    elif kind == "SelfSubjectRulesReview":
        spec["namespace"] = _text(fields(spec_bytes).get(1, b""))
    else:
        raise BadRequest(f"expected an access review, not {kind or 'an unknown kind'}")
    return {"kind": kind, "apiVersion": api_version, "spec": spec}


def parse_review(body: bytes, content_type: str) -> dict[str, Any]:
    """The review in ``body`` as the dict its JSON form gives; BadRequest otherwise."""
    if len(body) > MAX_REVIEW_BYTES:
        raise BadRequest("the review body is too large")
    media = content_type.split(";", 1)[0].strip().lower()
    if media == PROTOBUF:
        return _from_protobuf(body)
    if media in ("application/json", ""):
        try:
            review = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("the review body is not JSON") from None
        if not isinstance(review, dict):
            raise BadRequest("the review body is not a JSON object")
        return review
    raise BadRequest(f"an access review cannot be read from {media!r}")
