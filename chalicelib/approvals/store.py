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
from chalicelib.observability import logger

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
MAX_CLAIM_ATTEMPTS = 16
# Table names and AWS error codes go to the log; callers learn that nothing was approved.
APPROVALS_UNAVAILABLE = "approvals are unavailable; nothing is approved until they are back"
# Items keyed "claim#<match key>" hold which approval is pending for that key (see
# create_pending); they carry no index attributes, so no index or listing ever sees them.
CLAIM_PREFIX = "claim#"

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

    def create_pending(self, approval: Approval, now: float) -> tuple[Approval, bool]: ...

    def get(self, approval_id: str) -> Approval | None: ...

    def find_pending(self, match_key: str, now: float | None = None) -> Approval | None: ...

    def recent_denial(self, match_key: str, now: float | None = None) -> Approval | None: ...

    def consume_once(self, match_key: str, now: float | None = None) -> Approval | None: ...

    def consume(
        self, approval_id: str, match_key: str, now: float | None = None
    ) -> Approval | None: ...

    def active_grant(self, match_key: str, now: float | None = None) -> Approval | None: ...

    def give_back(self, approval: Approval) -> bool: ...

    def record_decision(
        self,
        approval_id: str,
        vote: Vote,
        now: float | None = None,
        witness: DecisionWitness | None = None,
    ) -> DecisionOutcome: ...

    def claim_interaction(self, approval_id: str, interaction_key: str) -> bool: ...

    def set_slack_message(self, approval_id: str, channel: str, ts: str) -> Approval: ...

    def set_slack_error(self, approval_id: str, error: str) -> Approval: ...

    def expire_overdue(self, now: float | None = None) -> list[Approval]: ...

    def by_status(self, status: str, limit: int = 50) -> list[Approval]: ...

    def by_requester(
        self, subject: str, limit: int = 50, *, issuer: str | None = None
    ) -> list[Approval]: ...


class DecisionWitness(Protocol):
    """Writes a decision's audit record in one transaction with the decision itself."""

    def commit(
        self, approval: Approval, vote: Vote, outcome: str, update: Mapping[str, Any]
    ) -> bool:
        """Write the record and ``update`` (a transaction item) together; False when the
        update's condition failed and nothing was written. AuditUnavailable otherwise."""
        ...


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
            (
                "#status = :approved AND expires_at > :now AND #mode = :once",
                {":approved": APPROVED, ":now": at, ":once": ONCE},
            ),
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

    def give_back(self, approval: Approval) -> bool:
        """Undo ``consume`` of a once-approval whose request never reached the cluster:
        used -> approved again, only if it is still the use we made (same ``used_at``)."""
        if approval.mode != ONCE or approval.status != USED or approval.used_at is None:
            return False
        try:
            self._update(
                approval.approval_id,
                "SET #status = :approved REMOVE used_at",
                "#status = :used AND used_at = :used_at",
                {":approved": APPROVED, ":used": USED, ":used_at": approval.used_at},
            )
        except _ConditionFailed:
            return False
        return True

    def record_decision(
        self,
        approval_id: str,
        vote: Vote,
        now: float | None = None,
        witness: DecisionWitness | None = None,
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
            refusal = _why_not(item, current, vote, at)
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
            email = _email_key(vote.email)
            if email:
                # One person is one approver, however many Slack accounts they click from.
                values.update({":email": email, ":emails": {email}})
                adds.append("decider_emails :emails")
                condition += " AND NOT contains(decider_emails, :email)"
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
            if witness is not None and current.session_id:
                # No record, no decision: the decision and its one audit record, naming this
                # voter, are written together or not at all.
                update = self._update_request(approval_id, expression, condition, values)
                if not witness.commit(current, vote, outcome, {"Update": update}):
                    continue  # someone else decided in between: look again
                return DecisionOutcome(outcome, self.get(approval_id))
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

    def create_pending(self, approval: Approval, now: float) -> tuple[Approval, bool]:
        """Store ``approval`` unless one is already pending for its match key.

        Returns ``(approval, True)`` when it was stored, or ``(the pending one, False)``. One
        pending approval per match key (requester and request, or requester and rule) holds
        under any number of identical requests at once: a claim item keyed by the match key
        is written in the same transaction as the approval, on the condition that it is new
        or still names the approval it named when we read it (which is no longer pending).
        """
        claim_key = {"approval_id": {"S": CLAIM_PREFIX + approval.match_key}}
        item = approval_to_item(approval)
        item["approve_count"] = {"N": str(len(approval.approve_decisions()))}
        for _ in range(MAX_CLAIM_ATTEMPTS):
            claim = self._call(
                self._client.get_item, TableName=self._table, Key=claim_key, ConsistentRead=True
            ).get("Item")
            condition, values = "attribute_not_exists(approval_id)", {}
            if claim is not None:
                claimed = self.get(claim["claimed_id"]["S"])
                if claimed is not None and claimed.status == PENDING and claimed.expires_at > now:
                    return claimed, False
                condition = "claimed_id = :claimed"
                values = {":claimed": claim["claimed_id"]}
            claim_item = {
                **claim_key,
                "claimed_id": {"S": approval.approval_id},
                # TTL: the claim outlives nothing it protects.
                "expires_at": {"N": str(int(approval.expires_at))},
            }
            put_claim: dict[str, Any] = {
                "TableName": self._table,
                "Item": claim_item,
                "ConditionExpression": condition,
            }
            if values:
                put_claim["ExpressionAttributeValues"] = values
            put_approval = {
                "TableName": self._table,
                "Item": item,
                "ConditionExpression": "attribute_not_exists(approval_id)",
            }
            try:
                self._call(
                    self._client.transact_write_items,
                    TransactItems=[{"Put": put_claim}, {"Put": put_approval}],
                )
            except _ConditionFailed:
                continue  # another identical request claimed it first: look again
            return approval, True
        raise ApprovalsUnavailable(
            "gave up creating an approval after repeated concurrent attempts; try again"
        )

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
            (
                "#status = :pending AND expires_at > :now",
                {":pending": PENDING, ":now": self._now(now)},
            ),
        )
        return next(found, None)

    def recent_denial(self, match_key: str, now: float | None = None) -> Approval | None:
        """The newest denied approval for ``match_key`` still within its ttl, or None.

        A human said no to exactly this request: asking again at once would only nag them.
        """
        found = self._query_index(
            BY_MATCH,
            ("match_key", match_key),
            (
                "#status = :denied AND expires_at > :now",
                {":denied": DENIED, ":now": self._now(now)},
            ),
        )
        return next(found, None)

    def active_grant(self, match_key: str, now: float | None = None) -> Approval | None:
        """The approved grant for ``match_key`` whose window is open now (latest end), or None."""
        found = list(
            self._query_index(
                BY_MATCH,
                ("match_key", match_key),
                (
                    "#status = :approved AND window_ends_at > :now AND #mode = :grant",
                    {":approved": APPROVED, ":now": self._now(now), ":grant": GRANT},
                ),
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
            BY_REQUESTER,
            ("requester", subject),
            ("requester_issuer = :issuer", {":issuer": issuer}),
        )
        return [a for _, a in zip(range(limit), found, strict=False)]

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
        kwargs = self._update_request(approval_id, expression, condition, values)
        answer = self._call(self._client.update_item, ReturnValues="ALL_NEW", **kwargs)
        attributes: dict[str, Any] = answer["Attributes"]
        return attributes

    def _update_request(
        self, approval_id: str, expression: str, condition: str | None, values: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The UpdateItem request (as UpdateItem or a transaction's Update takes it)."""
        used = f"{expression} {condition or ''}"
        names = {n: a for n, a in (("#status", "status"), ("#mode", "mode")) if n in used}
        exists = "attribute_exists(approval_id)"
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"approval_id": {"S": approval_id}},
            "UpdateExpression": expression,
            "ConditionExpression": f"{exists} AND ({condition})" if condition else exists,
            "ExpressionAttributeValues": {k: _serializer.serialize(v) for k, v in values.items()},
        }
        if names:
            kwargs["ExpressionAttributeNames"] = names
        return kwargs

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
            if code == "ConditionalCheckFailedException" or (
                code == "TransactionCanceledException" and _condition_cancelled(exc)
            ):
                raise _ConditionFailed() from None
            logger.error("approvals table call failed", extra={"table": self._table, "code": code})
            raise ApprovalsUnavailable(APPROVALS_UNAVAILABLE) from exc
        except BotoCoreError as exc:
            logger.error(
                "approvals table unreachable", extra={"table": self._table, "error": repr(exc)}
            )
            raise ApprovalsUnavailable(APPROVALS_UNAVAILABLE) from exc


def _condition_cancelled(exc: ClientError) -> bool:
    """A transaction cancelled because one of its conditions failed (not for throttling)."""
    reasons = exc.response.get("CancellationReasons") or []
    codes = {r.get("Code") for r in reasons if isinstance(r, dict)}
    if not codes:  # some clients only say so in the message
        return "ConditionalCheckFailed" in str(exc)
    return "ConditionalCheckFailed" in codes and codes <= {"ConditionalCheckFailed", "None"}


def _why_not(item: Mapping[str, Any], approval: Approval, vote: Vote, now: int) -> str | None:
    """Why a decision cannot be recorded on this item now, or None if it can."""
    user_id, interaction_key = vote.user_id, vote.interaction_key
    if interaction_key and interaction_key in item.get("handled", {}).get("SS", ()):
        return DUPLICATE
    if approval.status != PENDING:
        return NOT_PENDING
    if approval.expires_at <= now:
        return EXPIRED
    if user_id in item.get("deciders", {}).get("SS", ()):
        return ALREADY_DECIDED
    email = _email_key(vote.email)
    if email and email in item.get("decider_emails", {}).get("SS", ()):
        return ALREADY_DECIDED  # another Slack account of the same person
    return None


def _email_key(email: str | None) -> str:
    return (email or "").strip().lower()
