"""The audit table's item form: how a ``SessionRecord`` is stored in DynamoDB and read back.

Only the store and the stream export use it; records stay plain JSON values with no AWS types.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from chalicelib.audit.records import INDEX_KEYS, SessionRecord, record_from_fields, to_plain

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def record_to_item(record: SessionRecord) -> dict[str, Any]:
    """The DynamoDB item (attribute-value map) for ``record``; floats become Decimal."""
    data = record.to_json_dict()
    for key in INDEX_KEYS:
        if data[key] == "":
            del data[key]
    return {name: _serializer.serialize(_to_dynamo(value)) for name, value in data.items()}


def plain_from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """Any DynamoDB item (attribute-value map) as plain JSON values; Decimals become numbers."""
    return {name: to_plain(_deserializer.deserialize(value)) for name, value in item.items()}


def record_from_item(item: Mapping[str, Any]) -> SessionRecord:
    """The SessionRecord a DynamoDB item holds (attributes it does not know are ignored)."""
    data = plain_from_item(item)
    for key in INDEX_KEYS:
        data.setdefault(key, "")
    return record_from_fields(data)


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
