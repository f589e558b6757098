"""Where approvals live: a small port (``ApprovalStore``) and its DynamoDB adapter.

Every state change is a conditional write, so the table, not the Lambda that happens to run,
decides races: two clicks at once give one decision, two gateway requests racing for one
single-use approval give one use.

Decisions use optimistic concurrency on ``approve_count``. A decision reads the item, checks
it in Python (to say precisely why a click does not count), then writes the decision
*and*, when it is the approve that reaches ``min_approvers``, the status change in one
``UpdateItem`` conditioned on the count it read. A concurrent decision that got there first
changes the count (or the status), the condition fails, and the loser re-reads and re-decides.
So there is never an item with enough approvals but still pending, and with
``min_approvers: 1`` thirty simultaneous clicks record exactly one approval.

Internal attributes (never in ``Approval``): ``approve_count`` (N), ``deciders`` (SS, every
Slack user who decided) and ``handled`` (SS, the Slack deliveries already acted on, so a
retried or replayed delivery is recognised by the same conditional writes).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from boto3.dynamodb.types import TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.approvals.errors import ApprovalsUnavailable
from chalicelib.approvals.items import approval_from_item, approval_to_item
from chalicelib.approvals.model import (
    APPROVE,
    APPROVED,
    DENIED,
    DENY,
    EXPIRED,
    GRANT,
    ONCE,
    PENDING,
    USED,
    Approval,
    Vote,
)

RECORDED = "recorded"
ALREADY_DECIDED = "already_decided"
NOT_PENDING = "not_pending"
DUPLICATE = "duplicate"
NOT_FOUND = "not_found"
OUTCOMES = (RECORDED, APPROVED, DENIED, ALREADY_DECIDED, NOT_PENDING, EXPIRED, DUPLICATE, NOT_FOUND)

BY_STATUS, BY_REQUESTER, BY_MATCH = "by-status", "by-requester", "by-match"
# Each lost race means another decision was written, so attempts are bounded by the number of
# people clicking at once; past this something is wrong and we refuse rather than spin.
MAX_DECISION_ATTEMPTS = 64

_serializer = TypeSerializer()


@dataclass(frozen=True)
class DecisionOutcome:
    """What a click did: ``outcome`` is one of ``OUTCOMES``; ``approval`` is as it now stands.

    ``recorded``: an approve counted, more approvers are needed. ``approved``/``denied``: this
    decision settled it. The rest changed nothing: ``already_decided`` (this person decided
    before), ``not_pending`` (settled already), ``expired``, ``duplicate`` (this very Slack
    delivery was handled before), ``not_found``.
    """

    outcome: str
    approval: Approval | None

    @property
    def changed(self) -> bool:
        """True if the decision was written (and the Slack message should show it)."""
        return self.outcome in (RECORDED, APPROVED, DENIED)


class ApprovalStore(Protocol):
    """What the approvals core needs from storage. Times are epoch seconds."""

    def create(self, approval: Approval) -> Approval: ...

    def get(self, approval_id: str) -> Approval | None: ...

    def find_pending(self, match_key: str, now: float | None = None) -> Approval | None: ...

    def recent_denial(self, match_key: str, now: float | None = None) -> Approval | None: ...

    def consume_once(self, match_key: str, now: float | None = None) -> Approval | None: ...

    def consume(
        self, approval_id: str, match_key: str, now: float | None = None
    ) -> Approval | None: ...

    def active_grant(self, match_key: str, now: float | None = None) -> Approval | None: ...

    def record_decision(
        self, approval_id: str, vote: Vote, now: float | None = None
    ) -> DecisionOutcome: ...

    def claim_interaction(self, approval_id: str, interaction_key: str) -> bool: ...

    def set_slack_message(self, approval_id: str, channel: str, ts: str) -> Approval: ...

    def set_slack_error(self, approval_id: str, error: str) -> Approval: ...

    def expire_overdue(self, now: float | None = None) -> list[Approval]: ...

    def by_status(self, status: str, limit: int = 50) -> list[Approval]: ...

    def by_requester(
        self, subject: str, limit: int = 50, *, issuer: str | None = None
    ) -> list[Approval]: ...


class _ConditionFailed(Exception):
    """A conditional write lost: the item was not in the state the write required."""


class DynamoApprovalStore:
    """``ApprovalStore`` on the ApprovalsTable of infra/template.yaml (a boto3 DynamoDB client)."""

    def __init__(
        self, client: Any, table_name: str, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._client = client
        self._table = table_name
        self._clock = clock

    # -- writes -------------------------------------------------------------------------------

    def create(self, approval: Approval) -> Approval:
        """Store a new approval; its id must be new."""
        item = approval_to_item(approval)
        item["approve_count"] = {"N": str(len(approval.approve_decisions()))}
        try:
            self._call(
                self._client.put_item,
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(approval_id)",
            )
        except _ConditionFailed:
            raise ApprovalsUnavailable(
                f"approval id {approval.approval_id} already exists; retry the request"
            ) from None
        return approval

    def consume_once(self, match_key: str, now: float | None = None) -> Approval | None:
        """Use an approved, unexpired single-use approval for ``match_key``: approved -> used.

        Returns the used approval, or None if there is none. Of concurrent consumers of one
        approval exactly one gets it; the others try the next candidate, if any.
        """
        at = self._now(now)
        candidates = self._query_index(
            BY_MATCH,
            ("match_key", match_key),
            ("#status = :approved AND expires_at > :now AND #mode = :once", {":approved": APPROVED, ":now": at, ":once": ONCE}),
            newest_first=False,
        )
        for candidate in candidates:
            used = self.consume(candidate.approval_id, match_key, at)
            if used is not None:
                return used
        return None

    def consume(
        self, approval_id: str, match_key: str, now: float | None = None
    ) -> Approval | None:
        """Use this single-use approval if it is approved, unexpired and for ``match_key``."""
        at = self._now(now)
        try:
            item = self._update(
                approval_id,
                "SET #status = :used, used_at = :now",
                "#status = :approved AND expires_at > :now AND match_key = :key AND #mode = :once",
                {
                    ":used": USED,
                    ":now": at,
                    ":approved": APPROVED,
                    ":key": match_key,
                    ":once": ONCE,
                },
            )
        except _ConditionFailed:
            return None
        return approval_from_item(item)

    def record_decision(
        self, approval_id: str, vote: Vote, now: float | None = None
    ) -> DecisionOutcome:
        """Record ``user_id``'s approve or deny, if the approval is still open to it.

        Only while pending and unexpired, once per person, once per Slack delivery
        (``interaction_key``). A deny settles the approval; an approve settles it when it is
        the ``min_approvers``-th, which for a grant opens the window (``window_ends_at``) and
        for a once approval gives the requester ``ttl_seconds`` to use it. Who may decide is
        not checked here (see ``authorization.refusal_for``).
        """
        user_id, decision, interaction_key = vote.user_id, vote.decision, vote.interaction_key
        if decision not in (APPROVE, DENY):
            raise ValueError(f"decision must be {APPROVE!r} or {DENY!r}, not {decision!r}")
        at = self._now(now)
        entry = {
            "user_id": user_id,
            "user_name": vote.user_name,
            "email": vote.email or "",
            "decision": decision,
            "reason": vote.reason,
            "time": at,
        }
        for _ in range(MAX_DECISION_ATTEMPTS):
            item = self._get_item(approval_id)
            if item is None:
                return DecisionOutcome(NOT_FOUND, None)
            current = approval_from_item(item)
            refusal = _why_not(item, current, user_id, interaction_key, at)
            if refusal is not None:
                return DecisionOutcome(refusal, current)
            values: dict[str, Any] = {
                ":pending": PENDING,
                ":now": at,
                ":uid": user_id,
                ":entry": [entry],
                ":uids": {user_id},
            }
            sets = ["decisions = list_append(decisions, :entry)"]
            adds = ["deciders :uids"]
            condition = "#status = :pending AND expires_at > :now AND NOT contains(deciders, :uid)"
            if interaction_key:
                values.update({":key": interaction_key, ":keys": {interaction_key}})
                adds.append("handled :keys")
                condition += " AND NOT contains(handled, :key)"
            if decision == DENY:
                outcome = DENIED
                values[":denied"] = DENIED
                sets += ["#status = :denied", "decided_at = :now"]
            else:
                count = int(item.get("approve_count", {}).get("N", "0"))
                values.update({":count": count, ":next": count + 1})
                sets.append("approve_count = :next")
                condition += " AND approve_count = :count"
                outcome = RECORDED
                if count + 1 >= current.min_approvers:
                    outcome = APPROVED
                    values[":approved"] = APPROVED
                    sets += ["#status = :approved", "decided_at = :now"]
                    if current.mode == GRANT:
                        window_end = at + current.window_seconds
                        values.update({":window_end": window_end, ":expires": window_end})
                        sets += ["window_ends_at = :window_end", "expires_at = :expires"]
                    else:
                        values[":expires"] = at + current.ttl_seconds
                        sets.append("expires_at = :expires")
            expression = "SET " + ", ".join(sets) + " ADD " + ", ".join(adds)
            try:
                updated = self._update(approval_id, expression, condition, values)
            except _ConditionFailed:
                continue  # someone else decided in between: look again
            return DecisionOutcome(outcome, approval_from_item(updated))
        raise ApprovalsUnavailable(
            f"approval {approval_id}: gave up recording a decision after "
            f"{MAX_DECISION_ATTEMPTS} concurrent attempts; click again"
        )

    def claim_interaction(self, approval_id: str, interaction_key: str) -> bool:
        """Mark a Slack delivery about this approval as handled; False if it already was.

        Lets a refused click answer its clicker once, however often Slack (or anyone
        replaying it) delivers it. False as well if the approval does not exist.
        """
        try:
            self._update(
                approval_id,
                "ADD handled :keys",
                "NOT contains(handled, :key)",
                {":key": interaction_key, ":keys": {interaction_key}},
            )
        except _ConditionFailed:
            return False
        return True

    def set_slack_message(self, approval_id: str, channel: str, ts: str) -> Approval:
        """Remember where the approval was posted (for updates in place)."""
        item = self._update(
            approval_id,
            "SET slack_channel = :channel, slack_ts = :ts REMOVE slack_error",
            None,
            {":channel": channel, ":ts": ts},
        )
        return approval_from_item(item)

    def set_slack_error(self, approval_id: str, error: str) -> Approval:
        """Remember why the approval could not be posted (shown to the requester)."""
        item = self._update(approval_id, "SET slack_error = :error", None, {":error": error[:1000]})
        return approval_from_item(item)

    def expire_overdue(self, now: float | None = None) -> list[Approval]:
        """Move every pending approval past its deadline to expired; returns those moved."""
        at = self._now(now)
        expired = []
        for candidate in self._query_index(
            BY_STATUS, ("status", PENDING), ("expires_at <= :now", {":now": at})
        ):
            try:
                item = self._update(
                    candidate.approval_id,
                    "SET #status = :expired",
                    "#status = :pending AND expires_at <= :now",
                    {":expired": EXPIRED, ":pending": PENDING, ":now": at},
                )
            except _ConditionFailed:
                continue  # decided (or expired by another run) since the query
            expired.append(approval_from_item(item))
        return expired

    # -- reads --------------------------------------------------------------------------------

    def get(self, approval_id: str) -> Approval | None:
        """The approval with this id (strongly consistent), or None."""
        item = self._get_item(approval_id)
        return approval_from_item(item) if item is not None else None

    def find_pending(self, match_key: str, now: float | None = None) -> Approval | None:
        """The newest pending, unexpired approval for ``match_key``, or None.

        The index is eventually consistent: two identical requests within a moment of each
        other may each create an approval. That costs a second message, never an approval.
        """
        found = self._query_index(
            BY_MATCH,
            ("match_key", match_key),
            ("#status = :pending AND expires_at > :now", {":pending": PENDING, ":now": self._now(now)}),
        )
        return next(found, None)

    def recent_denial(self, match_key: str, now: float | None = None) -> Approval | None:
        """The newest denied approval for ``match_key`` still within its ttl, or None.

        A human said no to exactly this request: asking again at once would only nag them.
        """
        found = self._query_index(
            BY_MATCH,
            ("match_key", match_key),
            ("#status = :denied AND expires_at > :now", {":denied": DENIED, ":now": self._now(now)}),
        )
        return next(found, None)

    def active_grant(self, match_key: str, now: float | None = None) -> Approval | None:
        """The approved grant for ``match_key`` whose window is open now (latest end), or None."""
        found = list(
            self._query_index(
                BY_MATCH,
                ("match_key", match_key),
                ("#status = :approved AND window_ends_at > :now AND #mode = :grant", {":approved": APPROVED, ":now": self._now(now), ":grant": GRANT}),
            )
        )
        return max(found, key=lambda a: a.window_ends_at or 0, default=None)

    def by_status(self, status: str, limit: int = 50) -> list[Approval]:
        """Approvals with this status, newest first."""
        return list(self._query_index(BY_STATUS, ("status", status), limit=limit))

    def by_requester(
        self, subject: str, limit: int = 50, *, issuer: str | None = None
    ) -> list[Approval]:
        """A requester's approvals, newest first; ``issuer`` narrows a subject two issuers share."""
        if issuer is None:
            return list(self._query_index(BY_REQUESTER, ("requester", subject), limit=limit))
        found = self._query_index(
            BY_REQUESTER, ("requester", subject), ("requester_issuer = :issuer", {":issuer": issuer})
        )
        return [a for _, a in zip(range(limit), found)]

    # -- plumbing -----------------------------------------------------------------------------

    def _now(self, now: float | None) -> int:
        return int(self._clock() if now is None else now)

    def _get_item(self, approval_id: str) -> dict[str, Any] | None:
        answer = self._call(
            self._client.get_item,
            TableName=self._table,
            Key={"approval_id": {"S": approval_id}},
            ConsistentRead=True,
        )
        item: dict[str, Any] | None = answer.get("Item")
        return item

    def _update(
        self, approval_id: str, expression: str, condition: str | None, values: Mapping[str, Any]
    ) -> dict[str, Any]:
        """UpdateItem on an existing approval; ALL_NEW attributes. ``_ConditionFailed`` if lost."""
        used = f"{expression} {condition or ''}"
        names = {n: a for n, a in (("#status", "status"), ("#mode", "mode")) if n in used}
        exists = "attribute_exists(approval_id)"
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"approval_id": {"S": approval_id}},
            "UpdateExpression": expression,
            "ConditionExpression": f"{exists} AND ({condition})" if condition else exists,
            "ExpressionAttributeValues": {k: _serializer.serialize(v) for k, v in values.items()},
            "ReturnValues": "ALL_NEW",
        }
        if names:
            kwargs["ExpressionAttributeNames"] = names
        answer = self._call(self._client.update_item, **kwargs)
        attributes: dict[str, Any] = answer["Attributes"]
        return attributes

    def _query_index(
        self,
        index: str,
        key: tuple[str, str],
        where: tuple[str, Mapping[str, Any]] | None = None,
        *,
        newest_first: bool = True,
        limit: int | None = None,
    ) -> Iterator[Approval]:
        """Approvals from a GSI whose ``key`` (name, value) matches, filtered by ``where``
        (an expression and its values), page by page, lazily (stop iterating to stop
        reading)."""
        key_name, key_value = key
        filter_expression, values = where if where else (None, None)
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": index,
            "KeyConditionExpression": "#key = :key",
            "ExpressionAttributeNames": {"#key": key_name},
            "ExpressionAttributeValues": {":key": {"S": key_value}},
            "ScanIndexForward": not newest_first,
        }
        if filter_expression:
            kwargs["FilterExpression"] = filter_expression
            kwargs["ExpressionAttributeValues"].update(
                {k: _serializer.serialize(v) for k, v in (values or {}).items()}
            )
            for name, attribute in (("#status", "status"), ("#mode", "mode")):
                if name in filter_expression:
                    kwargs["ExpressionAttributeNames"][name] = attribute
        elif limit is not None:
            # Without a filter, Limit is the number of results; with one it would cut the
            # page before filtering, so it is only used here.
            kwargs["Limit"] = limit
        returned = 0
        while True:
            answer = self._call(self._client.query, **kwargs)
            for item in answer.get("Items", []):
                yield approval_from_item(item)
                returned += 1
                if limit is not None and returned >= limit:
                    return
            start = answer.get("LastEvaluatedKey")
            if not start:
                return
            kwargs["ExclusiveStartKey"] = start

    def _call(self, method: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            return method(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "ConditionalCheckFailedException":
                raise _ConditionFailed() from None
            raise ApprovalsUnavailable(
                f"the approvals table {self._table} is unavailable ({code}); "
                "nothing is approved until it is back"
            ) from exc
        except BotoCoreError as exc:
            raise ApprovalsUnavailable(
                f"the approvals table {self._table} could not be reached ({exc}); "
                "nothing is approved until it is back"
            ) from exc


def _why_not(
    item: Mapping[str, Any], approval: Approval, user_id: str, interaction_key: str | None, now: int
) -> str | None:
    """Why a decision cannot be recorded on this item now, or None if it can."""
    if interaction_key and interaction_key in item.get("handled", {}).get("SS", ()):
        return DUPLICATE
    if approval.status != PENDING:
        return NOT_PENDING
    if approval.expires_at <= now:
        return EXPIRED
    if user_id in item.get("deciders", {}).get("SS", ()):
        return ALREADY_DECIDED
    return None
