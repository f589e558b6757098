"""eksgate's session records as Kubernetes audit events (``audit.k8s.io/v1`` ``Event``).

One event per request the caller made: a forwarded request (its "request" and "response"
records, joined by Audit-ID) or a refusal (denied, waiting for approval, over a platform
limit), with the ``responseStatus`` the caller saw. ``auditID`` is the Audit-ID eksgate sent
to the cluster, so each event joins the cluster's own audit events of the same request.
Bodies are the masked ones the records hold; a Kubernetes audit ``Policy`` chooses the level.
Pure: records in, JSON-ready dicts out.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from chalicelib.audit.k8s_policy import (
    METADATA_FOR_ALL,
    Attributes,
    AuditPolicy,
    level_for,
    matching_rule,
    omits_managed_fields,
)
from chalicelib.audit.records import SessionRecord
from chalicelib.audit.timestamps import parse_time
from chalicelib.gateway.gateway_calls import PURPOSES

ANNOTATION_PREFIX = "eksgate.io/"
_LEGACY_NAMESPACE = uuid.UUID("6f1d6c4e-3d3f-4b8e-9f55-0b8e2a2f7a11")


def k8s_audit_events(
    records: Sequence[SessionRecord], policy: AuditPolicy = METADATA_FOR_ALL
) -> list[dict[str, Any]]:
    """The audit events of one session's records, in the order the requests arrived."""
    consumed = {
        r.approval_id: r for r in records if r.kind == "approval_consumed" and r.approval_id
    }
    gateway_calls: dict[str, list[str]] = {}
    for record in records:
        if record.kind == "gateway_request" and record.detail.get("for_audit_id"):
            served = str(record.detail["for_audit_id"])
            gateway_calls.setdefault(served, []).append(audit_id_of(record))
    events = []
    for first, last in _requests(records):
        context = _Context(
            consumed.get(first.approval_id or ""), gateway_calls.get(audit_id_of(first), [])
        )
        event = _event(first, last, context, policy)
        if event is not None:
            events.append(event)
    return events


@dataclass(frozen=True)
class _Context:
    """What other records of the session say about a request: the approval that cleared
    it, and the Audit-IDs of the gateway's own requests made for it."""

    approval: SessionRecord | None
    gateway_calls: list[str]


_OPENING_KINDS = frozenset({"request", "gateway_request"})
_ANSWER_KINDS = frozenset({"response", "gateway_response"})


def _requests(
    records: Sequence[SessionRecord],
) -> Iterator[tuple[SessionRecord, SessionRecord | None]]:
    """(request, response) pairs, the gateway's own (request, response) pairs, and
    (refusal, refusal); a request with no answer yet has None. A response no request record
    opened (a write the dry run showed changes nothing, ``kubectl auth can-i``: answered
    without forwarding) is (response, response)."""
    waiting: dict[str, SessionRecord] = {}
    order: list[str] = []
    answered: dict[str, SessionRecord] = {}
    for record in records:
        if record.kind == "refusal":
            key = f"refusal:{record.seq}"
            waiting[key], answered[key] = record, record
            order.append(key)
        elif record.kind in _OPENING_KINDS and not record.detail.get("purpose"):
            # (A "request" with a purpose is the dry-run record of older gateways: it shares
            # its client request's Audit-ID and is not a request of its own.)
            key = _join_key(record)
            waiting[key] = record
            order.append(key)
        elif record.kind in _ANSWER_KINDS:
            key = _join_key(record)
            if key in waiting and key not in answered:
                answered[key] = record
            elif key not in waiting and record.kind == "response" and record.detail.get("outcome"):
                waiting[key], answered[key] = record, record
                order.append(key)
    for key in order:
        yield waiting[key], answered.get(key)


def _join_key(record: SessionRecord) -> str:
    request = record.request or {}
    if request.get("audit_id"):
        return str(request["audit_id"])
    # Records from before Audit-IDs: a response answers the last request that looks the same.
    same = {k: v for k, v in request.items() if k != "audit_id"}
    return "legacy:" + json.dumps(same, sort_keys=True)


def audit_id_of(record: SessionRecord) -> str:
    """The Audit-ID of a record's request; records from before Audit-IDs get a stable one."""
    request = record.request or {}
    if request.get("audit_id"):
        return str(request["audit_id"])
    return str(uuid.uuid5(_LEGACY_NAMESPACE, f"{record.session_id}/{record.seq}"))


def _event(
    first: SessionRecord,
    last: SessionRecord | None,
    context: _Context,
    policy: AuditPolicy,
) -> dict[str, Any] | None:
    request = first.request or {}
    identity = first.identity or {}
    username = str(identity.get("email") or first.subject or "")
    groups = tuple(str(g) for g in identity.get("groups") or ())
    is_resource = bool(request.get("resource"))
    attributes = Attributes(
        username=username,
        groups=groups,
        verb=str(request.get("verb") or str(request.get("method", "")).lower()),
        is_resource_request=is_resource,
        api_group=str(request.get("api_group") or ""),
        resource=str(request.get("resource") or ""),
        subresource=str(request.get("subresource") or ""),
        namespace=str(request.get("namespace") or ""),
        name=str(request.get("name") or ""),
        path=str(request.get("path") or ""),
    )
    level, omitted = level_for(policy, attributes)
    stage = "ResponseComplete" if last is not None else "RequestReceived"
    if level == "None" or stage in omitted:
        return None
    event: dict[str, Any] = {
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": level,
        "auditID": audit_id_of(first),
        "stage": stage,
        "requestURI": _request_uri(request),
        "verb": str(request.get("verb") or str(request.get("method", "")).lower()),
        "user": _user(username, identity, first),
        "sourceIPs": [first.source_ip] if first.source_ip else [],
        "userAgent": first.user_agent,
        "requestReceivedTimestamp": _micro(first.time),
        "stageTimestamp": _micro((last or first).time),
        "annotations": _annotations(first, last, context),
    }
    if not event["sourceIPs"]:
        del event["sourceIPs"]
    if not event["userAgent"]:
        del event["userAgent"]
    if is_resource:
        event["objectRef"] = _object_ref(request)
    if last is not None:
        event["responseStatus"] = _response_status(last)
    if level in ("Request", "RequestResponse"):
        _add_body(event, "requestObject", first.request_body)
    if level == "RequestResponse" and last is not None and last.kind in _ANSWER_KINDS:
        _add_body(event, "responseObject", last.response_body)
    if omits_managed_fields(policy, matching_rule(policy, attributes)):
        for field in ("requestObject", "responseObject"):
            _drop_managed_fields(event.get(field))
    return event


def _drop_managed_fields(document: Any) -> None:
    if isinstance(document, dict):
        metadata = document.get("metadata")
        if isinstance(metadata, dict):
            metadata.pop("managedFields", None)
        for item in document.get("items") or ():  # lists: each item's own metadata
            _drop_managed_fields(item)


def _request_uri(request: Mapping[str, Any]) -> str:
    path = str(request.get("path") or "")
    query = str(request.get("query") or "")
    return f"{path}?{query}" if query else path


def _user(username: str, identity: Mapping[str, Any], record: SessionRecord) -> dict[str, Any]:
    user: dict[str, Any] = {"username": username}
    if record.subject:
        user["uid"] = record.subject
    groups = [str(g) for g in identity.get("groups") or ()]
    if groups:
        user["groups"] = groups
    if identity.get("issuer"):
        user["extra"] = {ANNOTATION_PREFIX + "issuer": [str(identity["issuer"])]}
    return user


def _object_ref(request: Mapping[str, Any]) -> dict[str, Any]:
    names = {
        "resource": "resource",
        "namespace": "namespace",
        "name": "name",
        "api_group": "apiGroup",
        "api_version": "apiVersion",
        "subresource": "subresource",
    }
    return {field: str(request[key]) for key, field in names.items() if request.get(key)}


def _response_status(last: SessionRecord) -> dict[str, Any]:
    """The Status the caller saw: the refusal's, or the cluster's answer as relayed."""
    if last.kind == "refusal":
        detail = last.detail or {}
        status: dict[str, Any] = {"metadata": {}, "status": "Failure"}
        if isinstance(detail.get("status"), int):
            status["code"] = detail["status"]
        for key in ("reason", "message"):
            if detail.get(key):
                status[key] = str(detail[key])
        return status
    exec_detail = (last.detail or {}).get("exec")
    if isinstance(exec_detail, dict):
        return _exec_status(last, exec_detail)
    if last.upstream_status is None:
        # Forwarded, but the answer was withheld (malformed, too large, cut off): the caller
        # got eksgate's error instead of the cluster's.
        error = str((last.detail or {}).get("error") or "the cluster's answer was withheld")
        return {"metadata": {}, "status": "Failure", "message": error}
    status = {"metadata": {}, "code": last.upstream_status}
    if last.upstream_status >= 400:
        body = _inline_json(last.response_body)
        status["status"] = "Failure"
        if isinstance(body, dict) and body.get("kind") == "Status":
            for key in ("reason", "message"):
                if isinstance(body.get(key), str) and body[key]:
                    status[key] = body[key]
    return status


def _exec_status(last: SessionRecord, exec_detail: Mapping[str, Any]) -> dict[str, Any]:
    """An exec's status as kube-apiserver logs it: 101 once the stream was upgraded (its
    ``upstream_status`` is then the command's exit code, or None when it had none), else
    the error the caller got."""
    error = (last.detail or {}).get("error")
    if isinstance(error, dict):
        status: dict[str, Any] = {"metadata": {}, "status": "Failure"}
        if isinstance(error.get("status"), int):
            status["code"] = error["status"]
        if error.get("message"):
            status["message"] = str(error["message"])
        return status
    return {"metadata": {}, "code": 101}


def _annotations(
    first: SessionRecord, last: SessionRecord | None, context: _Context
) -> dict[str, str]:
    approval = context.approval
    decision = (last.decision if last and last.kind == "refusal" else None) or first.decision
    notes: dict[str, str] = {
        "session-id": first.session_id,
        "cluster": first.cluster,
        "record-seq": str(first.seq),
        "chain-hash": (last or first).hash,
    }
    if decision:
        notes.update(
            {
                "effect": str(decision.get("effect") or ""),
                "policy": str(decision.get("policy") or ""),
                "rule": str(decision.get("rule") or ""),
                "reason": str(decision.get("reason") or ""),
            }
        )
    exec_detail = (last.detail if last is not None else {}).get("exec")
    if isinstance(exec_detail, dict) and exec_detail.get("exit_code") is not None:
        notes["exec-exit-code"] = str(exec_detail["exit_code"])
    approval_id = first.approval_id
    if approval_id:
        notes["approval-id"] = approval_id
    if approval is not None:
        detail = approval.detail or {}
        approvers = [str(a) for a in detail.get("approvers") or () if a]
        if approvers:
            notes["approvers"] = ",".join(approvers)
        if detail.get("diff_sha256"):
            notes["dry-run-diff-sha256"] = str(detail["diff_sha256"])
    notes.update(_gateway_call_notes(first, context))
    out = {ANNOTATION_PREFIX + k: v for k, v in notes.items() if v}
    # The same keys kube-apiserver's authorizer writes, so SIEM rules for them apply here.
    forwarded = last is not None and last.kind in _ANSWER_KINDS
    out["authorization.k8s.io/decision"] = "allow" if forwarded else "forbid"
    if decision and decision.get("reason"):
        out["authorization.k8s.io/reason"] = f"eksgate: {decision['reason']}"
    return out


def _gateway_call_notes(first: SessionRecord, context: _Context) -> dict[str, str]:
    """Ties between a client request and the gateway's own requests made for it: on the
    gateway's, what it was and which request it served; on the client's, their Audit-IDs."""
    notes = {"gateway-calls": ",".join(context.gateway_calls)}
    if first.kind == "gateway_request":
        purpose = str(first.detail.get("gateway_call") or "")
        notes.update(
            {
                "gateway-call": purpose,
                "for-audit-id": str(first.detail.get("for_audit_id") or ""),
                "gateway-call-purpose": PURPOSES.get(purpose, ""),
            }
        )
    return notes


def _add_body(event: dict[str, Any], field: str, summary: Mapping[str, Any] | None) -> None:
    """The masked body as an object when the record kept it whole; otherwise a note saying
    why it is absent (too large, or may hold credentials and was recorded by size only)."""
    if not summary:
        return
    document = _inline_json(summary)
    if isinstance(document, (dict, list)):
        event[field] = document
        return
    why = str(summary.get("reason") or "not recorded inline")
    event["annotations"][f"{ANNOTATION_PREFIX}{field}-omitted"] = (
        f"{why}; {summary.get('size', '?')} bytes"
    )


def _inline_json(summary: Mapping[str, Any] | None) -> Any:
    if not summary or not isinstance(summary.get("inline"), str):
        return None
    try:
        return json.loads(summary["inline"])
    except ValueError:
        return None


def _micro(text: str) -> str:
    """A record time in MicroTime's form (RFC 3339, six fraction digits, Z)."""
    moment = parse_time(text).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def events_to_jsonl(events: Sequence[Mapping[str, Any]]) -> str:
    """Events as JSON lines, the form EKS's CloudWatch log stream and SIEM parsers take."""
    return "".join(
        json.dumps(event, separators=(",", ":"), ensure_ascii=False) + "\n" for event in events
    )
