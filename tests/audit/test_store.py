"""The DynamoDB audit store: append-only, chained, concurrent-safe, fail-closed; listings."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError

from chalicelib.audit.chain import verify_chain
from chalicelib.audit.items import record_to_item
from chalicelib.audit.records import new_event
from chalicelib.audit.store import AuditStoreTuning, AuditUnavailable, DynamoAuditStore
from chalicelib.audit.summaries import summarize_newest_first
from chalicelib.errors import BadRequest, ServiceUnavailable
from tests.audit.conftest import AUDIT_TABLE, START
from tests.audit.helpers import request_event, sealed_chain

SID = "5f0c1d2e3a4b5c6d7e8f90a1b2c3d4e5"


def test_appends_chain_records_from_seq_zero(store):
    first = store.append(new_event("token_issued", session_id=SID, subject="ci", cluster="prod"))
    second = store.append(request_event(SID))
    assert (first.seq, second.seq) == (0, 1)
    assert second.prev_hash == first.hash
    assert first.time == "2026-11-22T13:40:29.123Z"
    assert first.expires_at == int(START) + 90 * 86400
    records = store.records(SID)
    assert records == [first, second]
    assert verify_chain(SID, records).ok


def test_the_store_sets_the_sealing_fields_itself(store):
    with pytest.raises(ValueError, match="the store sets seq"):
        store.append({**request_event(SID), "seq": 7})


def test_a_record_is_never_overwritten(store, dynamodb):
    record = store.append(request_event(SID))
    with pytest.raises(ClientError) as refused:
        dynamodb.put_item(
            TableName=AUDIT_TABLE,
            Item=record_to_item(record),
            ConditionExpression="attribute_not_exists(session_id)",
        )
    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"


def test_a_stale_cache_loses_the_conditional_put_and_chains_onto_the_real_last(dynamodb, clock):
    lambda_a = DynamoAuditStore(dynamodb, AUDIT_TABLE, clock=clock, sleep=lambda _: None)
    lambda_b = DynamoAuditStore(dynamodb, AUDIT_TABLE, clock=clock, sleep=lambda _: None)
    zero = lambda_a.append(request_event(SID, name="a0"))
    one = lambda_b.append(request_event(SID, name="b1"))
    two = lambda_a.append(request_event(SID, name="a2"))  # its cache still says seq 0
    assert [r.seq for r in (zero, one, two)] == [0, 1, 2]
    records = lambda_b.records(SID)
    assert [r.request["name"] for r in records] == ["a0", "b1", "a2"]
    assert verify_chain(SID, records).ok


def test_eight_threads_appending_to_one_session_make_one_intact_chain(store):
    _append_concurrently(lambda _: store, threads=8, each=5)
    records = store.records(SID)
    assert [r.seq for r in records] == list(range(40))
    assert verify_chain(SID, records).ok


class AtomicPuts:
    """DynamoDB checks a put's condition and writes atomically; moto's in-process backend
    does not (two threads can both pass the check), so this client restores that guarantee."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def put_item(self, **kwargs: Any) -> Any:
        with self._lock:
            return self._client.put_item(**kwargs)


def test_eight_processes_appending_to_one_session_make_one_intact_chain(dynamodb, clock):
    # Separate stores share nothing in memory, like separate Lambda instances: only the
    # conditional put keeps them from overwriting each other.
    client = AtomicPuts(dynamodb)
    stores = [DynamoAuditStore(client, AUDIT_TABLE, clock=clock) for _ in range(8)]
    _append_concurrently(lambda i: stores[i], threads=8, each=4)
    records = stores[0].records(SID)
    assert [r.seq for r in records] == list(range(32))
    assert verify_chain(SID, records).ok
    assert len({r.request["name"] for r in records}) == 32


def _append_concurrently(store_for: Any, threads: int, each: int) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads)

    def work(index: int) -> None:
        try:
            barrier.wait()
            for n in range(each):
                store_for(index).append(request_event(SID, name=f"t{index}-{n}"))
        except BaseException as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
    assert not errors


def test_a_write_that_cannot_happen_fails_closed(dynamodb, clock):
    store = DynamoAuditStore(dynamodb, "no-such-table", clock=clock)
    with pytest.raises(AuditUnavailable) as failure:
        store.append(request_event(SID))
    assert isinstance(failure.value, ServiceUnavailable) and failure.value.status == 503
    assert failure.value.message == "audit log unavailable: the request was not forwarded"
    assert "ResourceNotFound" in failure.value.cause


def test_losing_every_race_fails_closed(dynamodb, clock, store):
    store.append(request_event(SID))

    class AlwaysBehind:
        """A client whose reads never see the session's newest record."""

        def __getattr__(self, name: str) -> Any:
            return getattr(dynamodb, name)

        def query(self, **kwargs: Any) -> dict[str, Any]:
            return {"Items": []} if kwargs.get("Limit") == 1 else dynamodb.query(**kwargs)

        def get_item(self, **kwargs: Any) -> dict[str, Any]:
            return {}

    behind = DynamoAuditStore(
        AlwaysBehind(),
        AUDIT_TABLE,
        AuditStoreTuning(max_attempts=3),
        clock=clock,
        sleep=lambda _: None,
    )
    with pytest.raises(AuditUnavailable):
        behind.append(request_event(SID))
    assert len(store.records(SID)) == 1


def test_a_retried_put_that_had_succeeded_is_not_appended_twice(dynamodb, clock):
    class LostAnswer:
        """The first put lands, but its answer is lost and the retry sees the condition fail."""

        def __init__(self) -> None:
            self.puts = 0

        def __getattr__(self, name: str) -> Any:
            return getattr(dynamodb, name)

        def put_item(self, **kwargs: Any) -> dict[str, Any]:
            self.puts += 1
            dynamodb.put_item(**kwargs)
            if self.puts == 1:
                dynamodb.put_item(**kwargs)  # raises ConditionalCheckFailedException
            return {}

    store = DynamoAuditStore(LostAnswer(), AUDIT_TABLE, clock=clock, sleep=lambda _: None)
    record = store.append(request_event(SID))
    assert record.seq == 0
    assert store.records(SID) == [record]


def test_records_reads_every_page(dynamodb, clock, store):
    for n in range(5):
        store.append(request_event(SID, name=f"p{n}"))

    class SmallPages:
        def __getattr__(self, name: str) -> Any:
            return getattr(dynamodb, name)

        def query(self, **kwargs: Any) -> dict[str, Any]:
            return dynamodb.query(**kwargs, Limit=2)

    paged = DynamoAuditStore(SmallPages(), AUDIT_TABLE, clock=clock)
    assert [r.seq for r in paged.records(SID)] == [0, 1, 2, 3, 4]


# -- listings -----------------------------------------------------------------------------


def _session(store, clock, sid, subject, cluster, at, effects):
    clock.now = at
    store.append(
        new_event(
            "token_issued",
            session_id=sid,
            subject=subject,
            cluster=cluster,
            decision={"effect": "allow", "policy": "p", "rule": "r", "reason": "token"},
        )
    )
    for effect in effects:
        store.append(
            request_event(
                sid,
                effect=effect,
                subject=subject,
                cluster=cluster,
                approval_id="ap-1" if effect == "approve" else None,
            )
        )


@pytest.fixture()
def sessions(store, clock):
    _session(store, clock, "s-old", "alice", "prod", START, ["allow", "deny"])
    _session(store, clock, "s-mid", "bob", "prod", START + 3600, ["allow", "approve"])
    _session(store, clock, "s-new", "alice", "staging", START + 7200, ["allow"])
    return store


def test_sessions_of_an_identity_newest_first(sessions):
    found = sessions.sessions(subject="alice")
    assert [s.session_id for s in found] == ["s-new", "s-old"]
    old = found[1]
    assert (old.subject, old.cluster, old.records) == ("alice", "prod", 3)
    assert old.decisions == {"allow": 2, "deny": 1}
    assert old.first_time == "2026-11-22T13:40:29.123Z"


def test_sessions_on_a_cluster(sessions):
    found = sessions.sessions(cluster="prod")
    assert [s.session_id for s in found] == ["s-mid", "s-old"]
    assert found[0].approvals == 1


def test_sessions_of_an_identity_on_a_cluster(sessions):
    assert [s.session_id for s in sessions.sessions(subject="alice", cluster="staging")] == [
        "s-new"
    ]


def test_sessions_in_a_time_range(sessions):
    found = sessions.sessions(
        cluster="prod", since="2026-11-22T14:00:00Z", until="2026-11-22T15:00:00+00:00"
    )
    assert [s.session_id for s in found] == ["s-mid"]
    assert [
        s.session_id for s in sessions.sessions(subject="alice", until="2026-11-22T14:00:00Z")
    ] == ["s-old"]
    assert [
        s.session_id for s in sessions.sessions(subject="alice", since="2026-11-22T14:00:00Z")
    ] == ["s-new"]


def test_sessions_with_a_decision(sessions):
    denied = sessions.sessions(cluster="prod", decision="deny")
    assert [(s.session_id, s.records, s.decisions) for s in denied] == [("s-old", 1, {"deny": 1})]


def test_sessions_limit_keeps_the_most_recent(sessions):
    assert [s.session_id for s in sessions.sessions(subject="alice", limit=1)] == ["s-new"]


def test_sessions_needs_an_identity_or_a_cluster_and_real_times(store):
    with pytest.raises(BadRequest, match="give identity or cluster"):
        store.sessions()
    with pytest.raises(BadRequest, match="since: 'last week' is not an RFC 3339 time"):
        store.sessions(subject="alice", since="last week")
    with pytest.raises(BadRequest, match="is after until"):
        store.sessions(subject="alice", since="2026-11-23T00:00:00Z", until="2026-11-22T00:00:00Z")
    with pytest.raises(BadRequest, match="decision must be one of"):
        store.sessions(subject="alice", decision="maybe")


def test_a_listing_stops_reading_once_its_sessions_are_complete():
    def newest_first():
        yield from reversed(sealed_chain("s-new", 3, start_time=30))
        yield from reversed(sealed_chain("s-old", 3, start_time=0))
        raise AssertionError("read past what the listing needed")

    found = summarize_newest_first(newest_first(), limit=1, span=timedelta(seconds=5))
    assert [(s.session_id, s.records) for s in found] == [("s-new", 3)]
