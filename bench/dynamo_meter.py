"""A DynamoDB stand-in for the cost model: the audit table in memory, billed as DynamoDB bills.

It answers the calls ``DynamoAuditStore`` makes on the request path (a conditional PutItem,
the consistent Query of a session's newest item, a consistent GetItem, TransactWriteItems)
in the wire format boto3's client uses, and logs each call with its item, so that what a
request costs is counted from the very items the store writes:

- a write: 1 write unit per started KB of the item (attribute names + values); once for the
  table and once for each global secondary index the item appears in (it has the index's
  key attributes), at the size of the index's projection; twice that in a transaction;
- a read: 1 read unit per started 4 KB of the item read (a consistent read; half that
  eventually consistent), whatever the projection returns.

The table's indexes are read from ``infra/template.yaml``, the definition deployed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from eksgate_local.aws import table_definitions

from chalicelib.audit.items import dynamodb_item_size


@dataclass(frozen=True)
class Index:
    """A global secondary index: its key attributes and which attributes it copies."""

    name: str
    keys: tuple[str, ...]
    projection: str  # ALL | KEYS_ONLY | INCLUDE
    included: tuple[str, ...] = ()

    def entry(self, item: Mapping[str, Any], table_keys: tuple[str, ...]) -> dict | None:
        """The index's copy of ``item``, or None when the item lacks a key (sparse index)."""
        if any(key not in item for key in self.keys):
            return None
        if self.projection == "ALL":
            return dict(item)
        kept = set(self.keys) | set(table_keys) | set(self.included)
        return {name: value for name, value in item.items() if name in kept}


def audit_table_indexes() -> tuple[tuple[str, ...], list[Index]]:
    """The AuditTable's key attributes and global secondary indexes, as deployed."""
    table = table_definitions()["AuditTable"]
    keys = tuple(k["AttributeName"] for k in table["KeySchema"])
    indexes = [
        Index(
            index["IndexName"],
            tuple(k["AttributeName"] for k in index["KeySchema"]),
            index["Projection"]["ProjectionType"],
            tuple(index["Projection"].get("NonKeyAttributes", ())),
        )
        for index in table.get("GlobalSecondaryIndexes", [])
    ]
    return keys, indexes


@dataclass
class Bill:
    """Units consumed, by what consumed them."""

    table_writes: float = 0
    index_writes: float = 0
    failed_writes: float = 0
    reads: float = 0
    puts: int = 0
    transactions: int = 0
    head_reads: int = 0
    item_sizes: list[int] = field(default_factory=list)
    index_entry_sizes: dict[str, list[int]] = field(default_factory=dict)

    @property
    def write_units(self) -> float:
        return self.table_writes + self.index_writes + self.failed_writes


def _write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def _read_units(size: int, consistent: bool) -> float:
    units = max(1, math.ceil(size / 4096))
    return units if consistent else units / 2


def _conditional_failure() -> ClientError:
    return ClientError(
        {"Error": {"Code": "ConditionalCheckFailedException", "Message": "exists"}}, "PutItem"
    )


class MeteredAuditTable:
    """The audit table in memory, answering as a boto3 DynamoDB client, billing each call."""

    def __init__(self) -> None:
        self.keys, self.indexes = audit_table_indexes()
        self.items: dict[tuple[str, int], dict[str, Any]] = {}
        self.bill = Bill()
        # Writes are sized when billed (``settle``), so timing the store times the store.
        self._unbilled: list[tuple[dict[str, Any], int]] = []

    def settle(self) -> Bill:
        """The bill, with every write so far sized and counted."""
        for item, factor in self._unbilled:
            self._bill_write(item, factor)
        self._unbilled.clear()
        return self.bill

    def _key(self, item: Mapping[str, Any]) -> tuple[str, int]:
        return item["session_id"]["S"], int(item["seq"]["N"])

    def _bill_write(self, item: Mapping[str, Any], factor: int) -> None:
        size = dynamodb_item_size(item)
        self.bill.item_sizes.append(size)
        self.bill.table_writes += factor * _write_units(size)
        for index in self.indexes:
            entry = index.entry(item, self.keys)
            if entry is not None:
                entry_size = dynamodb_item_size(entry)
                self.bill.index_entry_sizes.setdefault(index.name, []).append(entry_size)
                self.bill.index_writes += factor * _write_units(entry_size)

    def put_item(self, TableName: str, Item: dict, ConditionExpression: str = "") -> dict:  # noqa: N803
        self.bill.puts += 1
        key = self._key(Item)
        if ConditionExpression and key in self.items:
            # A conditional write that fails is billed by the size of the item already there.
            self.bill.failed_writes += _write_units(dynamodb_item_size(self.items[key]))
            raise _conditional_failure()
        self.items[key] = Item
        self._unbilled.append((Item, 1))
        return {}

    def transact_write_items(self, TransactItems: list[dict]) -> dict:  # noqa: N803
        self.bill.transactions += 1
        for entry in TransactItems:
            if "Put" in entry:
                item = entry["Put"]["Item"]
                self.items[self._key(item)] = item
                self._unbilled.append((item, 2))
        return {}

    def query(self, **query: Any) -> dict:
        # Only the store's read of a session's newest item is on the request path.
        if query.get("Limit") != 1 or query.get("ScanIndexForward") is not False:
            raise NotImplementedError("the meter answers only the chain-head query")
        self.bill.head_reads += 1
        session_id = query["ExpressionAttributeValues"][":s"]["S"]
        found = sorted((k for k in self.items if k[0] == session_id), key=lambda k: k[1])
        if not found:
            self.bill.reads += _read_units(0, bool(query.get("ConsistentRead")))
            return {"Items": []}
        item = self.items[found[-1]]
        self.bill.reads += _read_units(dynamodb_item_size(item), bool(query.get("ConsistentRead")))
        names = set(query.get("ExpressionAttributeNames", {}).values())
        return {"Items": [{k: v for k, v in item.items() if k in names}]}

    def get_item(self, TableName: str, Key: dict, ConsistentRead: bool = False) -> dict:  # noqa: N803
        item = self.items.get(self._key(Key))
        self.bill.reads += _read_units(dynamodb_item_size(item or {}), ConsistentRead)
        return {"Item": item} if item else {}
