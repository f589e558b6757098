"""The audit table's item form: how a ``SessionRecord`` is stored in DynamoDB and read back.

Only the store and the stream export use it; records stay plain JSON values with no AWS types.

DynamoDB bills a write by the item's size (attribute names and values) per started KB, once
for the table and once for each index the item appears in, so items are written compactly
(version 2, ``"v": 2``):

- the key (``session_id``, ``seq``), the index keys (``subject``, ``cluster``, ``time``) and
  the TTL (``expires_at``) stay top-level attributes under their own names; a response
  keeps ``subject`` and ``cluster`` packed, so the indexes do not copy it (its request,
  written just before, is what finds the session: ``DynamoAuditStore.sessions``);
- ``hash`` and ``prev_hash`` are their 32 raw bytes (``h``, ``p``) instead of 64 hex digits;
- every other field is packed into ``z``: the fields' JSON, raw-deflated with a preset
  dictionary (``item_dictionary``), so each field's name costs a few bits, not its bytes.

Reading takes either form. An item without ``v`` is version 1: every field a top-level
attribute under its own name (records written before version 2). In both, a top-level
attribute named like a record field is that field: whoever sets ``user_agent`` on a stored
item directly changes what the record says, and the chain reports the record altered.
Attributes neither form writes are ignored, as before.
"""

from __future__ import annotations

import base64
import json
import math
import re
import zlib
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from chalicelib.audit.item_dictionary import ITEM_DICTIONARY_V2
from chalicelib.audit.records import (
    INDEX_KEYS,
    RECORD_FIELDS,
    SessionRecord,
    record_from_fields,
    to_plain,
)

ITEM_VERSION = 2
# The attributes version 2 writes besides record fields under their own names.
_V2_ATTRIBUTES = ("v", "z", "h", "p")
# Record fields that stay top-level in version 2: the key, the index keys and the TTL.
_TOP_LEVEL = ("session_id", "seq", "time", "subject", "cluster", "expires_at")
# A response follows its request in the same session at once: the indexes find the session by
# the request, so the response is not copied into them (it keeps subject and cluster packed).
UNINDEXED_KINDS = frozenset({"response"})
_TOP_LEVEL_UNINDEXED = tuple(name for name in _TOP_LEVEL if name not in INDEX_KEYS)
_HASHES = (("hash", "h"), ("prev_hash", "p"))
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
# Raw deflate: the hash chain already proves the bytes intact, so no zlib header or checksum.
_WBITS = -15
# DynamoDB's own item limit: a packed field that inflates past it is not one we wrote.
_MAX_INFLATED = 400 * 1024

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def record_to_item(record: SessionRecord) -> dict[str, Any]:
    """The DynamoDB item (attribute-value map, version 2) for ``record``."""
    # Read, not copied: nothing below changes a value (it is on every request's path).
    data = {name: getattr(record, name) for name in RECORD_FIELDS}
    item: dict[str, Any] = {"v": {"N": str(ITEM_VERSION)}}
    top_level = _TOP_LEVEL if is_indexed(record) else _TOP_LEVEL_UNINDEXED
    for name in top_level:
        if name in INDEX_KEYS and data[name] == "":
            continue  # DynamoDB refuses an empty string as an index key
        item[name] = _serializer.serialize(data[name])
    for name, short in _HASHES:
        digest = data[name]
        if isinstance(digest, str) and _HEX_DIGEST.fullmatch(digest):
            item[short] = {"B": bytes.fromhex(digest)}
        else:  # not a sha256 in our spelling: kept verbatim, so it still fails verification
            item[name] = _serializer.serialize(digest)
    packed = {
        name: value
        for name, value in data.items()
        if name not in top_level and name not in ("hash", "prev_hash")
    }
    item["z"] = {"B": _deflate(json.dumps(packed, separators=(",", ":"), ensure_ascii=False))}
    return item


def is_indexed(record: SessionRecord) -> bool:
    """Whether ``record``'s item is copied into the by-subject and by-cluster indexes."""
    return record.kind not in UNINDEXED_KINDS


def record_to_item_v1(record: SessionRecord) -> dict[str, Any]:
    """The version-1 item for ``record`` (every field top-level): what records written
    before version 2 look like; for tests and the cost model's comparison."""
    data = record.to_json_dict()
    for key in INDEX_KEYS:
        if data[key] == "":
            del data[key]
    return {name: _serializer.serialize(_to_dynamo(value)) for name, value in data.items()}


def record_from_item(item: Mapping[str, Any]) -> SessionRecord:
    """The SessionRecord a DynamoDB item of either version holds.

    ValueError or TypeError when it holds no record: a version this code does not know, a
    packed field that does not inflate to a JSON object, a missing or mistyped field.
    """
    return record_from_fields(_fields(item))


def exported_from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """What the stream export keeps of an item: every record field under its own name, and
    every other attribute as it was written (version 1 items are copied as they are).

    Accepts binary values as bytes or as base64 text (a Lambda stream event is JSON).
    """
    if "v" not in item:
        return plain_from_item(item)
    record = record_from_item(item).to_json_dict()
    extra = {
        name: value
        for name, value in item.items()
        if name not in _V2_ATTRIBUTES and name not in record
    }
    return {**plain_from_item(extra), **record}


def plain_from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """Any DynamoDB item (attribute-value map) as plain JSON values; Decimals become numbers."""
    return {name: to_plain(_deserializer.deserialize(value)) for name, value in item.items()}


def head_from_item(item: Mapping[str, Any]) -> tuple[int, str]:
    """``(seq, hash)`` of an item read with ``HEAD_PROJECTION`` (either version)."""
    seq = int(item["seq"]["N"])
    if "h" in item:
        return seq, _raw_bytes(item["h"]["B"]).hex()
    return seq, item["hash"]["S"]


# What the store reads of a session's newest item to chain onto it.
HEAD_PROJECTION = {
    "ProjectionExpression": "#q, #h, #hv2",
    "ExpressionAttributeNames": {"#q": "seq", "#h": "hash", "#hv2": "h"},
}


def dynamodb_item_size(item: Mapping[str, Any]) -> int:
    """The item's size as DynamoDB bills it: each attribute's UTF-8 name plus its value.

    Strings count their UTF-8 bytes, binaries their bytes, numbers one byte per two
    significant digits plus one, booleans and nulls one byte, lists and maps 3 bytes plus
    one byte and the size of each element (a map element's name included).
    """
    return sum(len(name.encode("utf-8")) + _value_size(value) for name, value in item.items())


def _value_size(value: Mapping[str, Any]) -> int:
    (kind, inner), *_ = value.items()
    if kind == "S":
        return len(inner.encode("utf-8"))
    if kind == "B":
        return len(_raw_bytes(inner))
    if kind == "N":
        return _number_size(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(1 + len(k.encode("utf-8")) + _value_size(v) for k, v in inner.items())
    if kind == "L":
        return 3 + sum(1 + _value_size(v) for v in inner)
    if kind == "SS":
        return sum(len(s.encode("utf-8")) for s in inner)
    if kind == "NS":
        return sum(_number_size(n) for n in inner)
    if kind == "BS":
        return sum(len(_raw_bytes(b)) for b in inner)
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def _number_size(text: str) -> int:
    digits = Decimal(text).normalize().as_tuple().digits
    return math.ceil(len(digits) / 2) + 1


def _fields(item: Mapping[str, Any]) -> dict[str, Any]:
    version = item.get("v")
    if version is None:
        data = {name: _deserialize(item[name]) for name in RECORD_FIELDS if name in item}
        for key in INDEX_KEYS:
            data.setdefault(key, "")
        return data
    if version != {"N": str(ITEM_VERSION)}:
        raise ValueError(f"audit item version {version!r} is not one this eksgate reads")
    packed = item.get("z")
    if not isinstance(packed, Mapping) or "B" not in packed:
        raise ValueError("audit item of version 2 lacks its packed fields")
    unpacked = json.loads(_inflate(_raw_bytes(packed["B"])))
    if not isinstance(unpacked, dict):
        raise ValueError("audit item's packed fields are not a JSON object")
    data = {**{key: "" for key in INDEX_KEYS}, **unpacked}
    for name, short in _HASHES:
        if short in item:
            data[name] = _raw_bytes(item[short]["B"]).hex()
    # Top-level attributes named like record fields are the record's, whatever z says.
    data.update({name: _deserialize(item[name]) for name in RECORD_FIELDS if name in item})
    return data


def _deserialize(value: Any) -> Any:
    return to_plain(_deserializer.deserialize(value))


def _deflate(text: str) -> bytes:
    packer = zlib.compressobj(
        9, zlib.DEFLATED, _WBITS, 9, zlib.Z_DEFAULT_STRATEGY, ITEM_DICTIONARY_V2
    )
    return packer.compress(text.encode("utf-8")) + packer.flush()


def _inflate(data: bytes) -> str:
    unpacker = zlib.decompressobj(_WBITS, zdict=ITEM_DICTIONARY_V2)
    try:
        text = unpacker.decompress(data, _MAX_INFLATED)
        if unpacker.unconsumed_tail or not unpacker.eof:
            raise ValueError("audit item's packed fields are truncated or too large")
    except zlib.error as exc:
        raise ValueError(f"audit item's packed fields do not inflate: {exc}") from None
    return text.decode("utf-8")


def _raw_bytes(value: Any) -> bytes:
    """Binary attribute values arrive as bytes (boto3's client) or base64 text (a stream
    event that reached Lambda as JSON)."""
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            raise ValueError("audit item's binary attribute is not base64") from None
    raise TypeError(f"{type(value).__name__} is not a binary attribute value")


def _to_dynamo(value: Any) -> Any:
    # repr() is the shortest text that reads back as the same float, so the number DynamoDB
    # returns hashes the same as the one we sealed (see chain.canonical_json).
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_dynamo(v) for v in value]
    return value
