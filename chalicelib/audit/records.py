"""Audit values: ``SessionRecord`` (one sealed event of a session) and ``SessionSummary``.

A record holds only JSON values (str, int, float, bool, None, lists, string-keyed dicts), so
it hashes, stores, exports and travels through the API without any conversion that could
change its meaning. Everything here is pure; the DynamoDB item form uses boto3's
serializers, which need ``Decimal`` for numbers.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from decimal import Decimal
from typing import Any

from chalicelib.identity import Identity
from chalicelib.kube.request import KubeRequest
from chalicelib.policy.engine import Decision

# A forwarded request is two records: "request" before it leaves (no record, no forward) and
# "response" with the cluster's answer (no record, no answer).
EVENT_KINDS = frozenset(
    {
        "token_issued",
        "request",
        "response",
        "refusal",
        # The gateway's own requests for a client request (its dry run, its read of the
        # current object): before (no record, no forward) and after, each under its own
        # Audit-ID. Not requests of the caller, so readers of "request" never count them.
        "gateway_request",
        "gateway_response",
        "approval_requested",
        "approval_posted",
        "approval_decided",
        "approval_click_refused",
        "approval_consumed",
        "approval_returned",
        "approval_expired",
        "direct_token_issued",
    }
)

# The fields a caller describes an event with; the store adds the rest (SEALING_FIELDS).
_EVENT_DEFAULTS: dict[str, Any] = {
    "subject": "",
    "cluster": "",
    "identity": {},
    "source_ip": "",
    "user_agent": "",
    "request": None,
    "decision": None,
    "approval_id": None,
    "upstream_status": None,
    "latency_ms": None,
    "request_body": None,
    "response_body": None,
    "detail": {},
}
SEALING_FIELDS = ("seq", "time", "expires_at", "prev_hash", "hash")
# DynamoDB refuses an empty string as a secondary index key, so these are left out of the
# item when empty (the record is then simply not listed under an identity or cluster).
INDEX_KEYS = ("subject", "cluster")


@dataclass(frozen=True)
class SessionRecord:
    """One event of a gateway session, sealed into the session's hash chain.

    The dict fields are JSON values; treat them as read-only (``to_json_dict`` copies).
    """

    session_id: str
    seq: int  # 0-based position in the session's chain
    time: str  # RFC 3339 UTC with milliseconds
    kind: str  # one of EVENT_KINDS
    subject: str
    cluster: str
    identity: dict[str, Any]  # subject, issuer, email, groups, matched_claims
    source_ip: str
    user_agent: str
    request: dict[str, Any] | None  # method, path, query, verb, api_group, ... name
    decision: dict[str, Any] | None  # effect, policy, rule, reason
    approval_id: str | None
    upstream_status: int | None
    latency_ms: float | None
    request_body: dict[str, Any] | None  # bodies.summarize_body of the masked text
    response_body: dict[str, Any] | None
    detail: dict[str, Any]  # free-form event data: approver, slack user, outcome
    prev_hash: str
    hash: str
    expires_at: int  # epoch seconds, DynamoDB TTL

    def to_json_dict(self) -> dict[str, Any]:
        """The record as plain JSON values (a deep copy), for the API and the export."""
        return copy.deepcopy(asdict(self))

    def sealed_fields(self) -> dict[str, Any]:
        """Every field the hash covers (all but ``hash``)."""
        return {k: v for k, v in self.to_json_dict().items() if k != "hash"}


RECORD_FIELDS = tuple(f.name for f in fields(SessionRecord))


@dataclass(frozen=True)
class SessionSummary:
    """What a session listing shows: one line per session, counting the records in range."""

    session_id: str
    subject: str
    cluster: str
    first_time: str
    last_time: str
    records: int
    decisions: dict[str, int]  # effect -> count
    approvals: int  # distinct approval ids seen

    def to_json_dict(self) -> dict[str, Any]:
        """The summary as plain JSON values."""
        return copy.deepcopy(asdict(self))

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> SessionSummary:
        """The summary an API answer carries; ValueError if it is not one."""
        try:
            return cls(
                session_id=str(data["session_id"]),
                subject=str(data["subject"]),
                cluster=str(data["cluster"]),
                first_time=str(data["first_time"]),
                last_time=str(data["last_time"]),
                records=int(data["records"]),
                decisions={str(k): int(v) for k, v in dict(data["decisions"]).items()},
                approvals=int(data["approvals"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a session summary: {exc!r}") from None


def new_event(kind: str, **event: Any) -> dict[str, Any]:
    """The unsealed fields of one event, for ``AuditStore.append``.

    ``session_id`` is required; every other event field defaults to empty. The store adds
    ``seq``, ``time``, ``expires_at``, ``prev_hash`` and ``hash``. Values are converted to
    plain JSON (tuples become lists); anything else (sets, bytes, objects, NaN) is a
    TypeError or ValueError here rather than a surprise when the record is hashed or stored.
    """
    if kind not in EVENT_KINDS:
        raise ValueError(f"unknown audit event kind {kind!r}; one of {sorted(EVENT_KINDS)}")
    unknown = set(event) - set(_EVENT_DEFAULTS) - {"session_id"}
    if unknown:
        raise TypeError(f"unknown audit event fields: {', '.join(sorted(unknown))}")
    session_id = event.get("session_id")
    if not isinstance(session_id, str) or not session_id:
        raise ValueError("an audit event needs a non-empty session_id")
    merged = {**copy.deepcopy(_EVENT_DEFAULTS), **event, "kind": kind}
    if merged["latency_ms"] is not None:
        merged["latency_ms"] = float(merged["latency_ms"])
    if merged["upstream_status"] is not None and not _is_int(merged["upstream_status"]):
        raise TypeError("upstream_status must be an int HTTP status")
    return {name: to_plain(value) for name, value in merged.items()}


def identity_dict(
    identity: Identity, matched_claims: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The ``identity`` field: who called, and the claims that made their policy apply."""
    plain: dict[str, Any] = to_plain(
        {
            "subject": identity.subject,
            "issuer": identity.issuer,
            "email": identity.email,
            "groups": list(identity.groups),
            "matched_claims": dict(matched_claims or {}),
        }
    )
    return plain


def request_dict(request: KubeRequest, method: str, query: str = "") -> dict[str, Any]:
    """The ``request`` field: the HTTP method and query with the resolved Kubernetes request."""
    return {
        "method": method,
        "path": request.path,
        "query": query,
        "verb": request.verb,
        "api_group": request.api_group,
        "api_version": request.api_version,
        "resource": request.resource,
        "subresource": request.subresource,
        "namespace": request.namespace,
        "name": request.name,
    }


def decision_dict(decision: Decision) -> dict[str, Any]:
    """The ``decision`` field: effect, policy, the rule's label and the reason given."""
    return {
        "effect": decision.effect,
        "policy": decision.policy,
        "rule": decision.rule_label,
        "reason": decision.reason,
    }


def record_from_fields(data: Mapping[str, Any]) -> SessionRecord:
    """A SessionRecord from exactly its fields; ValueError naming what is missing or wrong."""
    missing = [name for name in RECORD_FIELDS if name not in data]
    if missing:
        raise ValueError(f"audit record lacks {', '.join(missing)}")
    values = {name: to_plain(data[name]) for name in RECORD_FIELDS}
    _check_types(values)
    return SessionRecord(**values)


def record_from_json(data: Mapping[str, Any]) -> SessionRecord:
    """A SessionRecord from its ``to_json_dict`` form (an API answer or an export line)."""
    if not isinstance(data, Mapping):
        raise ValueError("an audit record must be a JSON object")
    return record_from_fields(data)


def to_plain(value: Any) -> Any:
    """``value`` as plain JSON values: Decimal to int or float, tuples to lists.

    Sets, bytes and other objects are refused (TypeError) and so are NaN and infinities
    (ValueError): none has one JSON spelling, so none could be hashed reproducibly.
    """
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("audit values cannot be NaN or infinite")
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("audit values cannot be NaN or infinite")
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        plain = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"audit object keys must be strings, not {type(key).__name__}")
            plain[key] = to_plain(item)
        return plain
    if isinstance(value, (list, tuple)):
        return [to_plain(item) for item in value]
    raise TypeError(f"{type(value).__name__} is not a JSON value an audit record can hold")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_STRINGS = (
    "session_id",
    "time",
    "kind",
    "subject",
    "cluster",
    "source_ip",
    "user_agent",
    "prev_hash",
    "hash",
)
_OPTIONAL_DICTS = ("request", "decision", "request_body", "response_body")


def type_problems(values: Mapping[str, Any]) -> list[str]:
    """The names of record fields in ``values`` whose values have the wrong type."""
    wrong = [name for name in _STRINGS if not isinstance(values[name], str)]
    wrong += [name for name in ("seq", "expires_at") if not _is_int(values[name])]
    wrong += [name for name in ("identity", "detail") if not isinstance(values[name], dict)]
    wrong += [
        name
        for name in _OPTIONAL_DICTS
        if values[name] is not None and not isinstance(values[name], dict)
    ]
    if values["approval_id"] is not None and not isinstance(values["approval_id"], str):
        wrong.append("approval_id")
    if values["upstream_status"] is not None and not _is_int(values["upstream_status"]):
        wrong.append("upstream_status")
    latency = values["latency_ms"]
    if latency is not None and (isinstance(latency, bool) or not isinstance(latency, (int, float))):
        wrong.append("latency_ms")
    return wrong


def _check_types(values: Mapping[str, Any]) -> None:
    wrong = type_problems(values)
    if wrong:
        raise ValueError(f"audit record has fields of the wrong type: {', '.join(wrong)}")
