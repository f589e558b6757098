"""What the gateway writes to the audit trail, one method per kind of event.

Bodies are masked before they are summarized: the audit trail never holds a Secret value or
a token. Every write is fail-closed: AuditUnavailable (503) propagates, so a request whose
record cannot be written is not forwarded, and an answer that cannot be recorded is not
returned.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

from chalicelib.audit.bodies import summarize_body
from chalicelib.audit.records import decision_dict, identity_dict, new_event, request_dict
from chalicelib.audit.store import AuditStore
from chalicelib.errors import EksgateError
from chalicelib.identity import Identity
from chalicelib.kube_request import KubeRequest
from chalicelib.masking import MaskingSettings, mask_document
from chalicelib.policy import Decision
from chalicelib.session_token import GatewaySession


@dataclass(frozen=True)
class Caller:
    """Where a request came from, as API Gateway saw it."""

    source_ip: str = ""
    user_agent: str = ""


# Bodies written to these carry credentials in shapes masking cannot recognise (a JSON patch
# of /data/password, a YAML apply of stringData): only their size and hash are recorded.
_OPAQUE_RESOURCES = frozenset({"secrets", "serviceaccounts/token", "tokenreviews"})


def masked_body_summary(
    body: bytes | str | None, settings: MaskingSettings, resource: str = ""
) -> dict | None:
    """A bounded summary of a body: masked by kind when it is a JSON object, else opaque.

    Masking recognises Secrets by their shape; anything it cannot read as an object (YAML,
    JSON patches, garbage) is recorded by its size only, never as text.
    """
    if not body:
        return None
    raw = body.encode() if isinstance(body, str) else body
    # No hash either: the hash of a body whose only unknown is a short password can be
    # reversed by guessing.
    opaque = {"size": len(raw), "omitted": True, "reason": "may hold credentials"}
    if resource in _OPAQUE_RESOURCES:
        return opaque
    try:
        document = json.loads(raw)
        if not isinstance(document, dict):
            return opaque
        masked = json.dumps(mask_document(document, settings), separators=(",", ":"))
    except (ValueError, RecursionError):
        return opaque
    return summarize_body(masked)


def _with_audit_id(request: dict[str, Any], audit_id: str) -> dict[str, Any]:
    # The Audit-ID the cluster was sent: joins this record to the cluster's own audit event.
    return {**request, "audit_id": audit_id} if audit_id else request


class GatewayAudit:
    def __init__(self, store: AuditStore) -> None:
        self._store = store

    def _append(
        self,
        kind: str,
        session_id: str,
        identity: Identity,
        matched_claims: Mapping[str, Any],
        cluster: str,
        caller: Caller,
        **fields: Any,
    ) -> None:
        self._store.append(
            new_event(
                kind,
                session_id=session_id,
                subject=identity.subject,
                cluster=cluster,
                identity=identity_dict(identity, matched_claims),
                source_ip=caller.source_ip,
                user_agent=caller.user_agent,
                **fields,
            )
        )

    def session_event(
        self, kind: str, session: GatewaySession, caller: Caller, **fields: Any
    ) -> None:
        self._append(
            kind,
            session.session_id,
            session.identity,
            session.matched_claims,
            session.cluster,
            caller,
            **fields,
        )

    def token_issued(
        self,
        kind: str,
        session_id: str,
        identity: Identity,
        matched_claims: Mapping[str, Any],
        cluster: str,
        policy: str,
        caller: Caller,
        detail: Mapping[str, Any],
    ) -> None:
        self._append(
            kind,
            session_id,
            identity,
            matched_claims,
            cluster,
            caller,
            decision={"effect": "allow", "policy": policy, "rule": "", "reason": "token issued"},
            detail=dict(detail),
        )

    def refusal(
        self,
        session: GatewaySession,
        caller: Caller,
        method: str,
        path: str,
        request: KubeRequest | None,
        decision: Decision | None,
        error: EksgateError,
        approval_id: str | None = None,
        audit_id: str = "",
        request_body: dict | None = None,
    ) -> None:
        recorded = (
            request_dict(request, method)
            if request
            else {
                "method": method,
                "path": path,
                "query": "",
                "verb": "",
                "api_group": "",
                "api_version": "",
                "resource": "",
                "subresource": "",
                "namespace": "",
                "name": "",
            }
        )
        self.session_event(
            "refusal",
            session,
            caller,
            request=_with_audit_id(recorded, audit_id),
            decision=decision_dict(decision) if decision else None,
            # A request waiting for (or denied) approval names the approval it waits for.
            approval_id=approval_id or error.details.get("approval_id"),
            # What was tried, masked like a forwarded body: refusals answer "what did it try".
            request_body=request_body,
            detail={"status": error.status, "reason": error.reason, "message": error.message},
        )

    def request(
        self,
        session: GatewaySession,
        caller: Caller,
        method: str,
        query: str,
        request: KubeRequest,
        decision: Decision,
        approval_id: str | None,
        body: bytes | None,
        masking: MaskingSettings,
        audit_id: str = "",
    ) -> None:
        self.session_event(
            "request",
            session,
            caller,
            request=_with_audit_id(request_dict(request, method, query), audit_id),
            decision=decision_dict(decision),
            approval_id=approval_id,
            request_body=masked_body_summary(body, masking, request.resource_with_subresource),
        )

    def response(
        self,
        session: GatewaySession,
        caller: Caller,
        method: str,
        query: str,
        request: KubeRequest,
        status: int | None,
        latency_ms: float,
        masked_body: str | None,
        error: str | None = None,
        audit_id: str = "",
    ) -> None:
        self.session_event(
            "response",
            session,
            caller,
            request=_with_audit_id(request_dict(request, method, query), audit_id),
            upstream_status=status,
            latency_ms=round(latency_ms, 1),
            response_body=summarize_body(masked_body) if masked_body else None,
            detail={"error": error} if error else {},
        )

    def approval_event(
        self, kind: str, approval: Any, caller: Caller, detail: Mapping[str, Any]
    ) -> None:
        """An approval's event (decided, expired), in the session that asked for it."""
        requester = Identity(
            subject=approval.requester_subject,
            issuer=str(approval.requester.get("issuer") or ""),
            email=approval.requester_email,
        )
        self._append(
            kind,
            approval.session_id,
            requester,
            {},
            approval.cluster,
            caller,
            approval_id=approval.approval_id,
            decision={
                "effect": "approve",
                "policy": approval.policy,
                "rule": approval.rule,
                "reason": approval.reason,
            },
            detail=dict(detail),
        )
