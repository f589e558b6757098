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

from chalicelib.approvals.fingerprint import ApprovalSubject
from chalicelib.identity import Identity
from chalicelib.kube.request import KubeRequest
from chalicelib.policy.model import Rule

PENDING, APPROVED, DENIED, EXPIRED, USED = "pending", "approved", "denied", "expired", "used"
# Who asked: a person (told apart from approvers by verified email) or a workload.
PERSON, WORKLOAD = "person", "workload"
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
    "intent",  # what a client-stamped change does ("restart"), when it is one
)
DECISION_FIELDS = ("user_id", "user_name", "email", "decision", "reason", "time")


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
    requester: Mapping[str, str | None]  # subject, issuer, email, claimed_email, kind
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
        """The requester's verified email, if their identity had one."""
        email = self.requester.get("email")
        return email if isinstance(email, str) and email else None

    @property
    def requester_claimed_email(self) -> str | None:
        """An email the requester's token claimed without verification: display only."""
        email = self.requester.get("claimed_email")
        return email if isinstance(email, str) and email else None

    @property
    def requester_is_workload(self) -> bool:
        # An approval stored before requesters had a kind is a person's: fail closed.
        return self.requester.get("kind") == WORKLOAD

    def approve_decisions(self) -> tuple[Mapping[str, Any], ...]:
        return tuple(d for d in self.decisions if d.get("decision") == APPROVE)

    def decided_by(self, user_id: str) -> Mapping[str, Any] | None:
        """This user's decision, if they made one."""
        return next((d for d in self.decisions if d.get("user_id") == user_id), None)

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
            "request": {
                k: str(self.request.get(k) or "") for k in REQUEST_FIELDS if k in self.request
            },
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


@dataclass(frozen=True)
class SlackUser:
    """A Slack member as the approvals core needs them. ``email`` is None if Slack hides it."""

    id: str
    name: str
    email: str | None = None
    deleted: bool = False
    is_bot: bool = False


@dataclass(frozen=True)
class ApprovalAsk:
    """Who asks for what, under which rule: what finds an approval or opens a new one.

    ``request`` and ``subject`` are None when only a ``grant`` can answer (a direct token:
    no Kubernetes request yet, only the requester and the rule).
    """

    requester: Identity
    cluster: str
    policy: str
    rule: Rule
    request: KubeRequest | None = None
    subject: ApprovalSubject | None = None
    session_id: str = ""
    workload: bool = False  # the requester is a workload (its policy says so), not a person


@dataclass(frozen=True)
class Vote:
    """One person's approve or deny, as Slack delivered it."""

    user_id: str
    user_name: str
    email: str | None
    decision: str  # APPROVE or DENY
    reason: str = ""
    interaction_key: str | None = None  # the Slack delivery, so a replay decides nothing
