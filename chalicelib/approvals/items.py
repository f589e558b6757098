"""The approvals table's item form: how an ``Approval`` is stored in DynamoDB and read back.

Only the store uses it; the model stays a plain value with no AWS types.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from chalicelib.approvals.model import DECISION_FIELDS, ONCE, REQUEST_FIELDS, Approval

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def approval_to_item(approval: Approval) -> dict[str, Any]:
    """The DynamoDB item (attribute values), for the ApprovalsTable.

    ``requester`` is stored as the subject alone because it is the key of the
    ``by-requester`` index; issuer and email sit beside it. Absent optionals are left out
    rather than stored as NULL, so conditions can test ``attribute_exists``.
    """
    plain: dict[str, Any] = {
        "approval_id": approval.approval_id,
        "status": approval.status,
        "requester": approval.requester_subject,
        "requester_issuer": str(approval.requester.get("issuer") or ""),
        "cluster": approval.cluster,
        "policy": approval.policy,
        "rule": approval.rule,
        "mode": approval.mode,
        "direct": approval.direct,
        "fingerprint": approval.fingerprint,
        "match_key": approval.match_key,
        "request": {
            k: str(approval.request.get(k) or "") for k in REQUEST_FIELDS if k in approval.request
        },
        "reason": approval.reason,
        "approvers": list(approval.approvers),
        "min_approvers": approval.min_approvers,
        "created_at": approval.created_at,
        "expires_at": int(approval.expires_at),
        "ttl_seconds": int(approval.ttl_seconds),
        "window_seconds": int(approval.window_seconds),
        "decisions": [_plain_decision(d) for d in approval.decisions],
        "diff": approval.diff,
    }
    optional = {
        "requester_email": approval.requester_email,
        "requester_claimed_email": approval.requester_claimed_email,
        "requester_kind": approval.requester.get("kind"),
        "decided_at": approval.decided_at,
        "window_ends_at": approval.window_ends_at,
        "used_at": approval.used_at,
        "slack_channel": approval.slack_channel,
        "slack_ts": approval.slack_ts,
        "slack_error": approval.slack_error,
        "session_id": approval.session_id or None,
    }
    plain.update({k: v for k, v in optional.items() if v is not None})
    return {k: _serializer.serialize(v) for k, v in plain.items()}


def approval_from_item(item: Mapping[str, Any]) -> Approval:
    """The Approval in a DynamoDB item (as GetItem/Query return it)."""
    # Attributes the store keeps for itself (deciders, handled deliveries...) are ignored.
    raw = {k: _deserializer.deserialize(v) for k, v in item.items()}
    requester = {
        "subject": str(raw.get("requester", "")),
        "issuer": str(raw.get("requester_issuer", "")),
        "email": _opt_str(raw.get("requester_email")),
    }
    for field in ("claimed_email", "kind"):
        if f"requester_{field}" in raw:
            requester[field] = _opt_str(raw[f"requester_{field}"])
    return Approval(
        approval_id=str(raw["approval_id"]),
        status=str(raw["status"]),
        requester=requester,
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
