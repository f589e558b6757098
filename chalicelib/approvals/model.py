"""The approval record: one human decision about one request (``once``) or one rule (``grant``).

An ``Approval`` is a value: the store turns it into a DynamoDB item and back, the service and
the Slack messages read it, and ``to_public_dict`` is what the API shows the requester.
Internal bookkeeping the store keeps on the item (who decided, which Slack deliveries were
handled, the approve count it uses for optimistic concurrency) never appears here.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

PENDING, APPROVED, DENIED, EXPIRED, USED = "pending", "approved", "denied", "expired", "used"
STATUSES = (PENDING, APPROVED, DENIED, EXPIRED, USED)
ONCE, GRANT = "once", "grant"
MODES = (ONCE, GRANT)
APPROVE, DENY = "approve", "deny"

# Short enough to read out or paste into the CLI, long enough (80 bits) that ids never collide.
APPROVAL_ID_LENGTH = 20
_APPROVAL_ID = re.compile(f"[0-9a-f]{{{APPROVAL_ID_LENGTH}}}")

REQUEST_FIELDS = (
    "method",
    "path",
    "query",
    "verb",
    "resource",
    "subresource",
    "namespace",
    "name",
    "api_group",
)
DECISION_FIELDS = ("user_id", "user_name", "email", "decision", "reason", "time")

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def new_approval_id() -> str:
    """A fresh random approval id (lower-case hex)."""
    return uuid.uuid4().hex[:APPROVAL_ID_LENGTH]


def is_approval_id(value: object) -> bool:
    """True if ``value`` has the shape of an approval id (so it is safe to look up)."""
    return isinstance(value, str) and _APPROVAL_ID.fullmatch(value) is not None


def iso_time(epoch: float) -> str:
    """UTC ISO 8601 with microseconds: fixed width, so strings sort as times do (GSI keys)."""
    moment = dt.datetime.fromtimestamp(epoch, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Approval:
    """A request for a human decision, and what became of it.

    ``expires_at`` is when the approval stops being useful (and the DynamoDB TTL): while
    pending, the deadline for a decision; once approved, the deadline for the requester to use
    a ``once`` approval, or the end of a ``grant`` window (``window_ends_at``), so TTL never
    deletes an approval that can still be used. ``diff`` is already masked and bounded.
    """

    approval_id: str
    status: str
    requester: Mapping[str, str | None]  # subject, issuer, email
    cluster: str
    policy: str
    rule: str  # the rule's label
    mode: str
    direct: bool
    fingerprint: str
    match_key: str
    request: Mapping[str, str]  # REQUEST_FIELDS
    reason: str  # the rule's reason, for the approver
    approvers: tuple[str, ...]
    min_approvers: int
    created_at: str  # iso_time
    expires_at: int
    ttl_seconds: int = 900
    window_seconds: int = 900
    decisions: tuple[Mapping[str, Any], ...] = ()
    decided_at: int | None = None
    window_ends_at: int | None = None
    used_at: int | None = None
    slack_channel: str | None = None
    slack_ts: str | None = None
    slack_error: str | None = None
    diff: str = ""
    session_id: str = ""  # the gateway session that asked: its audit trail records decisions

    @property
    def requester_subject(self) -> str:
        return str(self.requester.get("subject") or "")

    @property
    def requester_email(self) -> str | None:
        email = self.requester.get("email")
        return email if isinstance(email, str) and email else None

    def approve_decisions(self) -> tuple[Mapping[str, Any], ...]:
        return tuple(d for d in self.decisions if d.get("decision") == APPROVE)

    def decided_by(self, user_id: str) -> Mapping[str, Any] | None:
        """This user's decision, if they made one."""
        return next((d for d in self.decisions if d.get("user_id") == user_id), None)

    def to_item(self) -> dict[str, Any]:
        """The DynamoDB item (attribute values), for the ApprovalsTable.

        ``requester`` is stored as the subject alone because it is the key of the
        ``by-requester`` index; issuer and email sit beside it. Absent optionals are left out
        rather than stored as NULL, so conditions can test ``attribute_exists``.
        """
        plain: dict[str, Any] = {
            "approval_id": self.approval_id,
            "status": self.status,
            "requester": self.requester_subject,
            "requester_issuer": str(self.requester.get("issuer") or ""),
            "cluster": self.cluster,
            "policy": self.policy,
            "rule": self.rule,
            "mode": self.mode,
            "direct": self.direct,
            "fingerprint": self.fingerprint,
            "match_key": self.match_key,
            "request": {k: str(self.request.get(k) or "") for k in REQUEST_FIELDS},
            "reason": self.reason,
            "approvers": list(self.approvers),
            "min_approvers": self.min_approvers,
            "created_at": self.created_at,
            "expires_at": int(self.expires_at),
            "ttl_seconds": int(self.ttl_seconds),
            "window_seconds": int(self.window_seconds),
            "decisions": [_plain_decision(d) for d in self.decisions],
            "diff": self.diff,
        }
        optional = {
            "requester_email": self.requester_email,
            "decided_at": self.decided_at,
            "window_ends_at": self.window_ends_at,
            "used_at": self.used_at,
            "slack_channel": self.slack_channel,
            "slack_ts": self.slack_ts,
            "slack_error": self.slack_error,
            "session_id": self.session_id or None,
        }
        plain.update({k: v for k, v in optional.items() if v is not None})
        return {k: _serializer.serialize(v) for k, v in plain.items()}

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Approval:
        """The Approval in a DynamoDB item (as GetItem/Query return it)."""
        # Attributes the store keeps for itself (deciders, handled deliveries...) are ignored.
        raw = {k: _deserializer.deserialize(v) for k, v in item.items()}
        return cls(
            approval_id=str(raw["approval_id"]),
            status=str(raw["status"]),
            requester={
                "subject": str(raw.get("requester", "")),
                "issuer": str(raw.get("requester_issuer", "")),
                "email": _opt_str(raw.get("requester_email")),
            },
            cluster=str(raw.get("cluster", "")),
            policy=str(raw.get("policy", "")),
            rule=str(raw.get("rule", "")),
            mode=str(raw.get("mode", ONCE)),
            direct=bool(raw.get("direct", False)),
            fingerprint=str(raw.get("fingerprint", "")),
            match_key=str(raw.get("match_key", "")),
            request={k: str(v) for k, v in dict(raw.get("request") or {}).items()},
            reason=str(raw.get("reason", "")),
            approvers=tuple(str(a) for a in raw.get("approvers") or ()),
            min_approvers=int(raw.get("min_approvers", 1)),
            created_at=str(raw.get("created_at", "")),
            expires_at=int(raw.get("expires_at", 0)),
            ttl_seconds=int(raw.get("ttl_seconds", 900)),
            window_seconds=int(raw.get("window_seconds", 900)),
            decisions=tuple(_decision_from_item(d) for d in raw.get("decisions") or ()),
            decided_at=_opt_int(raw.get("decided_at")),
            window_ends_at=_opt_int(raw.get("window_ends_at")),
            used_at=_opt_int(raw.get("used_at")),
            slack_channel=_opt_str(raw.get("slack_channel")),
            slack_ts=_opt_str(raw.get("slack_ts")),
            slack_error=_opt_str(raw.get("slack_error")),
            diff=str(raw.get("diff", "")),
            session_id=str(raw.get("session_id", "")),
        )

    def to_public_dict(self) -> dict[str, Any]:
        """What ``GET /v1/approvals/{id}`` shows: the request, its state, who decided and when.

        Match keys, fingerprints and Slack coordinates are internal and left out; whether
        the approvers were notified is shown, because a requester waiting on a message that
        never reached Slack should know.
        """
        return {
            "approval_id": self.approval_id,
            "status": self.status,
            "requester": {
                "subject": self.requester_subject,
                "issuer": str(self.requester.get("issuer") or ""),
                "email": self.requester_email,
            },
            "cluster": self.cluster,
            "policy": self.policy,
            "rule": self.rule,
            "mode": self.mode,
            "direct": self.direct,
            "request": {k: str(self.request.get(k) or "") for k in REQUEST_FIELDS},
            "reason": self.reason,
            "approvers": list(self.approvers),
            "min_approvers": self.min_approvers,
            "decisions": [
                {
                    "user_id": d.get("user_id"),
                    "user_name": d.get("user_name"),
                    "decision": d.get("decision"),
                    "reason": d.get("reason") or "",
                    "time": iso_time(int(d.get("time") or 0)),
                }
                for d in self.decisions
            ],
            "created_at": self.created_at,
            "expires_at": iso_time(self.expires_at),
            "decided_at": iso_time(self.decided_at) if self.decided_at is not None else None,
            "window_ends_at": (
                iso_time(self.window_ends_at) if self.window_ends_at is not None else None
            ),
            "used_at": iso_time(self.used_at) if self.used_at is not None else None,
            "notified": self.slack_ts is not None,
            "notification_error": self.slack_error,
            "diff": self.diff,
        }


def _plain_decision(decision: Mapping[str, Any]) -> dict[str, Any]:
    plain = {k: decision.get(k) for k in DECISION_FIELDS}
    plain["time"] = int(plain.get("time") or 0)
    return {k: ("" if v is None else v) for k, v in plain.items()}


def _decision_from_item(value: Any) -> dict[str, Any]:
    decision = {k: value.get(k, "") for k in DECISION_FIELDS}
    decision["time"] = int(decision["time"] or 0)
    decision["email"] = decision["email"] or None
    return decision


def _opt_str(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _opt_int(value: Any) -> int | None:
    return int(value) if value is not None else None


@dataclass(frozen=True)
class SlackUser:
    """A Slack member as the approvals core needs them. ``email`` is None if Slack hides it."""

    id: str
    name: str
    email: str | None = None
    deleted: bool = False
    is_bot: bool = False
