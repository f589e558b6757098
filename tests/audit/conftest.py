"""An AuditTable in moto, created from infra/template.yaml."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from eksgate_local.aws import create_tables, table_definitions

from chalicelib.audit.store import DynamoAuditStore

AUDIT_TABLE = "eksgate-test-audit"
START = datetime(2026, 11, 22, 13, 40, 29, 123000, tzinfo=UTC).timestamp()


class Clock:
    """A settable time source; each call may advance it so records get distinct times."""

    def __init__(self, now: float = START, step: float = 0.0) -> None:
        self.now = now
        self.step = step

    def __call__(self) -> float:
        value = self.now
        self.now += self.step
        return value


@pytest.fixture()
def dynamodb(aws):
    client = aws.client("dynamodb")
    names = {logical_id: f"eksgate-test-{logical_id}" for logical_id in table_definitions()}
    names["AuditTable"] = AUDIT_TABLE
    create_tables(client, names)
    return client


@pytest.fixture()
def clock():
    return Clock(step=0.001)


@pytest.fixture()
def store(dynamodb, clock):
    return DynamoAuditStore(dynamodb, AUDIT_TABLE, clock=clock, sleep=lambda _: None)
