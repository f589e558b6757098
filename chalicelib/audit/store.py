"""Where audit records live: the ``AuditStore`` port and its DynamoDB adapter.

Records are only ever added: a conditional ``PutItem`` that fails if the key exists, never an
update or a delete (the app's IAM policy grants neither). Writing is on the request path and
fails closed: if a record cannot be written, ``append`` raises ``AuditUnavailable`` and the
caller answers 503 instead of forwarding ("no record, no forward").
"""

from __future__ import annotations

import random
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.audit.chain import genesis_hash, seal
from chalicelib.audit.items import (
    HEAD_PROJECTION,
    head_from_item,
    record_from_item,
    record_to_item,
)
from chalicelib.audit.records import (
    SEALING_FIELDS,
    SessionRecord,
    SessionSummary,
)
from chalicelib.audit.summaries import (
    DEFAULT_SESSION_SPAN,
    summarize_newest_first,
    summarize_session,
)
from chalicelib.audit.timestamps import format_time, normalize_time, parse_time
from chalicelib.errors import BadRequest, EksgateError, ServiceUnavailable
from chalicelib.observability import logger

DEFAULT_RETENTION_SECONDS = 90 * 86400
DECISION_EFFECTS = ("allow", "approve", "deny")
# The longest a Lambda invocation runs: a request's record and its response's are this close.
RESPONSE_LAG = timedelta(minutes=15)
_LOCK_STRIPES = 64
_MAX_BACKOFF = 0.05


class AuditUnavailable(ServiceUnavailable):
    """The record could not be written, so the request must not proceed."""

    def __init__(self, cause: str = "") -> None:
        super().__init__("audit log unavailable: the request was not forwarded")
        # Kept for logs, not for the caller: AWS error text names tables and accounts.
        self.cause = cause


class AuditReadError(ServiceUnavailable):
    """The audit log could not be read (DynamoDB unavailable or throttling)."""


class MalformedRecord(EksgateError):
    """A stored item is not a record eksgate wrote: it was changed outside eksgate."""


class AuditStore(Protocol):
    """What the gateway and the audit routes need from wherever records are kept."""

    def append(self, fields: Mapping[str, Any]) -> SessionRecord:
        """Seal ``fields`` (from ``records.new_event``) as the session's next record."""
        ...

    def append_with(
        self, fields: Mapping[str, Any], companion: Mapping[str, Any]
    ) -> SessionRecord | None:
        """Seal ``fields`` and write them with ``companion`` in one transaction; None when the
        companion's condition failed."""
        ...

    def records(self, session_id: str) -> list[SessionRecord]:
        """Every record of the session, ordered by ``seq``."""
        ...

    def sessions(
        self,
        subject: str | None = None,
        cluster: str | None = None,
        since: str | None = None,
        until: str | None = None,
        decision: str | None = None,
        limit: int = 100,
    ) -> list[SessionSummary]:
        """Summaries of the sessions with records matching the filters, newest first."""
        ...


@dataclass(frozen=True)
class AuditStoreTuning:
    """How long records live and how hard the store tries; the defaults suit production."""

    retention_seconds: int = DEFAULT_RETENTION_SECONDS
    max_attempts: int = 50  # conditional puts lost to concurrent appends before giving up
    cache_size: int = 4096  # sessions whose last (seq, hash) a warm Lambda remembers
    session_span: timedelta = DEFAULT_SESSION_SPAN
    max_items_read: int = 20_000


# _put_new's answer when a transaction's companion write lost its condition.
_COMPANION_REFUSED = object()


def _failed_conditions(exc: ClientError) -> set[int]:
    """The positions of a cancelled transaction's items whose condition failed."""
    reasons = exc.response.get("CancellationReasons") or []
    return {i for i, r in enumerate(reasons) if (r or {}).get("Code") == "ConditionalCheckFailed"}


class DynamoAuditStore:
    """The audit log in the AuditTable of ``infra/template.yaml``.

    Key ``(session_id, seq)``; indexes ``by-subject`` and ``by-cluster`` on ``time``; TTL on
    ``expires_at``. Safe to share between threads.

    A session's appends are serialized by the chain itself: concurrent writers (kubectl
    fires discovery requests in parallel, each possibly on its own Lambda instance) take
    turns through the conditional put, so ``max_attempts`` is generous and the backoff
    short and jittered.
    """

    def __init__(
        self,
        client: Any,
        table_name: str,
        tuning: AuditStoreTuning = AuditStoreTuning(),
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._table = table_name
        self._retention = tuning.retention_seconds
        self._clock = clock
        self._max_attempts = tuning.max_attempts
        self._cache_size = tuning.cache_size
        self._session_span = tuning.session_span
        self._max_items_read = tuning.max_items_read
        self._sleep = sleep
        # Last (seq, hash) per session, so a warm Lambda appends without reading first.
        self._last: OrderedDict[str, tuple[int, str]] = OrderedDict()
        self._cache_lock = threading.Lock()
        # Appends to one session are serialized in this process (they would only lose the
        # conditional put to each other); striped so the locks never need cleaning up.
        self._stripes = [threading.Lock() for _ in range(_LOCK_STRIPES)]

    # -- writing -----------------------------------------------------------------------

    def append(self, fields: Mapping[str, Any]) -> SessionRecord:
        """Write ``fields`` as the session's next record and return it, sealed.

        Concurrent appends from other processes are resolved by the conditional put: the
        loser re-reads the session's last record and chains onto it. Raises
        AuditUnavailable if the record cannot be written.
        """
        record = self._append(fields, None)
        assert record is not None  # no companion write, so nothing could refuse it
        return record

    def append_with(
        self, fields: Mapping[str, Any], companion: Mapping[str, Any]
    ) -> SessionRecord | None:
        """Write ``fields`` and ``companion`` (a TransactWriteItems item, e.g. the approvals
        table's conditional decision update) in one transaction: both or neither.

        None when the companion's own condition failed (nothing was written): the event it
        records did not happen. AuditUnavailable when the record cannot be written.
        """
        return self._append(fields, companion)

    def _append(
        self, fields: Mapping[str, Any], companion: Mapping[str, Any] | None
    ) -> SessionRecord | None:
        session_id = fields.get("session_id")
        if not isinstance(session_id, str) or not session_id:
            raise ValueError("an audit event needs a non-empty session_id")
        given = [name for name in SEALING_FIELDS if name in fields]
        if given:
            raise ValueError(f"the store sets {', '.join(given)}; do not pass them")
        stripe = self._stripes[zlib.crc32(session_id.encode("utf-8")) % _LOCK_STRIPES]
        with stripe:
            return self._append_locked(session_id, fields, companion)

    def _append_locked(
        self, session_id: str, fields: Mapping[str, Any], companion: Mapping[str, Any] | None
    ) -> SessionRecord | None:
        try:
            last = self._cached(session_id) or self._read_last(session_id)
            for attempt in range(self._max_attempts):
                now = self._clock()
                record = seal(
                    {
                        **fields,
                        "seq": last[0] + 1,
                        "time": format_time(datetime.fromtimestamp(now, UTC)),
                        "expires_at": int(now) + self._retention,
                    },
                    last[1],
                )
                written = self._put_new(record, companion)
                if written is _COMPANION_REFUSED:
                    return None
                if written:
                    self._remember(record)
                    return record
                # Someone else wrote this seq. It may be our own earlier try, if its answer
                # was lost and botocore retried: then the record is there and we are done.
                existing = self._get(session_id, record.seq)
                if existing is not None and existing.hash == record.hash:
                    self._remember(record)
                    return record
                last = self._read_last(session_id)
                # Full jitter, so writers that collided do not collide again in step.
                self._sleep(random.uniform(0, min(_MAX_BACKOFF, 0.004 * 2**attempt)))
        except (
            ClientError,
            BotoCoreError,
            MalformedRecord,
            KeyError,
            ValueError,
            TypeError,
            ArithmeticError,
        ) as exc:
            self._forget(session_id)
            logger.warning(
                "audit append failed", extra={"session_id": session_id, "cause": repr(exc)}
            )
            raise AuditUnavailable(repr(exc)) from exc
        self._forget(session_id)
        logger.warning("audit append lost every race", extra={"session_id": session_id})
        raise AuditUnavailable(f"{self._max_attempts} conditional puts lost to other writers")

    def _put_new(self, record: SessionRecord, companion: Mapping[str, Any] | None) -> object:
        """Write ``record`` unless its key exists (False if it does), with ``companion`` in
        the same transaction (``_COMPANION_REFUSED`` if the companion's condition failed)."""
        put = {
            "TableName": self._table,
            "Item": record_to_item(record),
            "ConditionExpression": "attribute_not_exists(session_id)",
        }
        try:
            if companion is None:
                self._client.put_item(**put)
            else:
                self._client.transact_write_items(TransactItems=[{"Put": put}, dict(companion)])
        except ClientError as exc:
            error = exc.response.get("Error", {}).get("Code")
            if error == "ConditionalCheckFailedException":
                return False
            if error == "TransactionCanceledException":
                failed = _failed_conditions(exc)
                if 1 in failed:
                    return _COMPANION_REFUSED
                if failed == {0}:
                    return False
            raise
        return True

    def _read_last(self, session_id: str) -> tuple[int, str]:
        answer = self._client.query(
            TableName=self._table,
            KeyConditionExpression="session_id = :s",
            ExpressionAttributeValues={":s": {"S": session_id}},
            **HEAD_PROJECTION,
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
        )
        items = answer.get("Items") or []
        if not items:
            return (-1, genesis_hash(session_id))
        return head_from_item(items[0])

    def _get(self, session_id: str, seq: int) -> SessionRecord | None:
        answer = self._client.get_item(
            TableName=self._table,
            ConsistentRead=True,
            Key={"session_id": {"S": session_id}, "seq": {"N": str(seq)}},
        )
        item = answer.get("Item")
        return _record(item) if item else None

    def _cached(self, session_id: str) -> tuple[int, str] | None:
        with self._cache_lock:
            last = self._last.get(session_id)
            if last is not None:
                self._last.move_to_end(session_id)
            return last

    def _remember(self, record: SessionRecord) -> None:
        with self._cache_lock:
            self._last[record.session_id] = (record.seq, record.hash)
            self._last.move_to_end(record.session_id)
            while len(self._last) > self._cache_size:
                self._last.popitem(last=False)

    def _forget(self, session_id: str) -> None:
        with self._cache_lock:
            self._last.pop(session_id, None)

    # -- reading -----------------------------------------------------------------------

    def records(self, session_id: str) -> list[SessionRecord]:
        """Every record of ``session_id`` (all pages, consistent reads), ordered by seq."""
        pages = self._pages(
            TableName=self._table,
            KeyConditionExpression="session_id = :s",
            ExpressionAttributeValues={":s": {"S": session_id}},
            ScanIndexForward=True,
            ConsistentRead=True,
        )
        return [_record(item) for item in pages]

    def sessions(
        self,
        subject: str | None = None,
        cluster: str | None = None,
        since: str | None = None,
        until: str | None = None,
        decision: str | None = None,
        limit: int = 100,
    ) -> list[SessionSummary]:
        """Sessions of ``subject`` (index by-subject) or else on ``cluster`` (by-cluster).

        ``since``/``until`` are inclusive RFC 3339 bounds on record times; ``decision``
        keeps only records with that effect, so the summaries count those records only.
        BadRequest if neither subject nor cluster is given or a bound is not a time.
        """
        # The indexes hold no responses (items.UNINDEXED_KINDS): they find the sessions, and
        # each found session is counted from the table, every record that matches. A response
        # is written in the same Lambda invocation as its request, so at most RESPONSE_LAG
        # after it: the index is read that much further back to find its session.
        matches = _RecordFilter(
            subject,
            cluster,
            _bound("since", since) if since else None,
            _bound("until", until) if until else None,
            decision,
        )
        earlier = format_time(parse_time(matches.since) - RESPONSE_LAG) if matches.since else None
        query = _sessions_query(self._table, subject, cluster, earlier, until, decision)
        found = summarize_newest_first(
            self._listed_records(query, decision), limit, self._session_span
        )
        counted = [self._recount(summary.session_id, matches) for summary in found]
        listed = [summary for summary in counted if summary is not None]
        listed.sort(key=lambda s: (s.last_time, s.session_id), reverse=True)
        return listed

    def _recount(self, session_id: str, matches: _RecordFilter) -> SessionSummary | None:
        query = {
            "TableName": self._table,
            "KeyConditionExpression": "session_id = :s",
            "ExpressionAttributeValues": {":s": {"S": session_id}},
            "ConsistentRead": True,
        }
        return summarize_session(r for r in self._readable(self._pages(**query)) if matches(r))

    def _readable(self, items: Iterator[dict[str, Any]]) -> Iterator[SessionRecord]:
        for count, item in enumerate(items):
            if count >= self._max_items_read:
                logger.warning(
                    "audit listing stopped at the read bound",
                    extra={"max_items_read": self._max_items_read},
                )
                return
            try:
                yield _record(item)
            except MalformedRecord as exc:
                # A listing must still work; `sessions show` reports the altered record.
                logger.warning("skipped a malformed audit record", extra={"cause": exc.message})

    def _listed_records(
        self, query: dict[str, Any], decision: str | None
    ) -> Iterator[SessionRecord]:
        for record in self._readable(self._pages(**query)):
            # Filtered here, not by DynamoDB: a version-2 item packs the decision (items.py).
            # DynamoDB bills the items a filter drops all the same.
            if decision is None or (record.decision or {}).get("effect") == decision:
                yield record

    def _pages(self, **query: Any) -> Iterator[dict[str, Any]]:
        start: dict[str, Any] | None = None
        while True:
            try:
                answer = self._client.query(
                    **query, **({"ExclusiveStartKey": start} if start else {})
                )
            except (ClientError, BotoCoreError) as exc:
                logger.warning("audit read failed", extra={"cause": repr(exc)})
                raise AuditReadError("the audit log could not be read; try again") from exc
            yield from answer.get("Items") or []
            start = answer.get("LastEvaluatedKey")
            if not start:
                return


@dataclass(frozen=True)
class _RecordFilter:
    """A listing's filters, applied to a found session's records read from the table."""

    subject: str | None
    cluster: str | None
    since: str | None  # normalized (timestamps.normalize_time), compared as DynamoDB does
    until: str | None
    decision: str | None

    def __call__(self, record: SessionRecord) -> bool:
        return (
            (not self.subject or record.subject == self.subject)
            and (not self.cluster or record.cluster == self.cluster)
            and (self.since is None or record.time >= self.since)
            and (self.until is None or record.time <= self.until)
            and (not self.decision or (record.decision or {}).get("effect") == self.decision)
        )


def _sessions_query(
    table: str,
    subject: str | None,
    cluster: str | None,
    since: str | None,
    until: str | None,
    decision: str | None,
) -> dict[str, Any]:
    """The Query for ``DynamoAuditStore.sessions``; BadRequest for unusable filters."""
    if subject:
        index, key, value = "by-subject", "subject", subject
    elif cluster:
        index, key, value = "by-cluster", "cluster", cluster
    else:
        raise BadRequest("give identity or cluster")
    names = {"#k": key}
    values: dict[str, Any] = {":k": {"S": value}}
    condition = "#k = :k"
    bounds = {
        name: _bound(name, text) for name, text in (("since", since), ("until", until)) if text
    }
    if "since" in bounds and "until" in bounds:
        if bounds["since"] > bounds["until"]:
            raise BadRequest(f"since ({since}) is after until ({until})")
        condition += " AND #t BETWEEN :since AND :until"
    elif "since" in bounds:
        condition += " AND #t >= :since"
    elif "until" in bounds:
        condition += " AND #t <= :until"
    if bounds:
        names["#t"] = "time"
        values.update({f":{name}": {"S": text} for name, text in bounds.items()})
    filters = []
    if subject and cluster:
        names["#c"] = "cluster"
        values[":c"] = {"S": cluster}
        filters.append("#c = :c")
    if decision and decision not in DECISION_EFFECTS:
        raise BadRequest(f"decision must be one of {', '.join(DECISION_EFFECTS)}, not {decision!r}")
    query: dict[str, Any] = {
        "TableName": table,
        "IndexName": index,
        "KeyConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
        "ScanIndexForward": False,
    }
    if filters:
        query["FilterExpression"] = " AND ".join(filters)
    return query


def _bound(name: str, text: str) -> str:
    try:
        return normalize_time(text)
    except ValueError as exc:
        raise BadRequest(f"{name}: {exc}") from None


def _record(item: Mapping[str, Any]) -> SessionRecord:
    try:
        return record_from_item(item)
    except (ValueError, TypeError) as exc:
        where = f"{item.get('session_id', {}).get('S', '?')}/{item.get('seq', {}).get('N', '?')}"
        raise MalformedRecord(
            f"audit record {where} is not one eksgate wrote (changed outside eksgate): {exc}"
        ) from None
