"""What the gateway writes to the audit trail, one method per kind of event.

Bodies are masked before they are summarized: the audit trail never holds a Secret value or
a token. Every write is fail-closed: AuditUnavailable (503) propagates, so a request whose
record cannot be written is not forwarded, and an answer that cannot be recorded is not
returned.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.approvals.model import Approval, Vote
from chalicelib.audit.bodies import summarize_body
from chalicelib.audit.records import decision_dict, identity_dict, new_event, request_dict
from chalicelib.audit.store import AuditStore
from chalicelib.credentials.session_token import GatewaySession
from chalicelib.errors import EksgateError
from chalicelib.gateway.exchange import Authenticated, Exchange
from chalicelib.gateway.gateway_calls import GatewayCall
from chalicelib.identity import Caller, Identity
from chalicelib.masking import MaskingSettings, kind_for_resource, mask_document
from chalicelib.observability import logger
from chalicelib.policy import Decision

# Bodies written to these carry credentials in shapes masking cannot recognise (a JSON patch
# of /data/password, a YAML apply of stringData): only their size and hash are recorded.
_OPAQUE_RESOURCES = frozenset({"secrets", "serviceaccounts/token", "tokenreviews"})


def masked_body_summary(
    body: bytes | str | None, settings: MaskingSettings, resource: str = "", kind: str = ""
) -> dict | None:
    """A bounded summary of a body: masked by kind when it is a JSON object, else opaque.

    Masking recognises Secrets by their shape; anything it cannot read as an object (YAML,
    JSON patches, protobuf, garbage) is recorded by its size only, never as text; not even
    its hash: the hash of a body whose only unknown is a short password can be reversed by
    guessing.
    """
    if not body:
        return None
    raw = body.encode() if isinstance(body, str) else body
    opaque = {"size": len(raw), "omitted": True, "reason": "may hold credentials"}
    if resource in _OPAQUE_RESOURCES:
        return opaque
    try:
        document = json.loads(raw)
        if not isinstance(document, dict):
            return opaque
        masked = json.dumps(
            mask_document(document, settings, resource_kind=kind), separators=(",", ":")
        )
    except (ValueError, RecursionError):
        return opaque
    return summarize_body(masked)


@dataclass(frozen=True)
class SessionOpening:
    """A credential issued: the session it opens (or, for direct tokens, a session of its own)."""

    session_id: str
    identity: Identity
    matched_claims: Mapping[str, Any]
    cluster: str
    policy: str


@dataclass(frozen=True)
class Outcome:
    """What became of a forwarded request: the cluster's status and masked answer, or why
    there is none (``error``), and anything else worth saying (``note``)."""

    status: int | None
    latency_ms: float | None
    masked_body: str | None
    error: str | None = None
    note: str | None = None


_UNRESOLVED_REQUEST = {
    "query": "",
    "verb": "",
    "api_group": "",
    "api_version": "",
    "resource": "",
    "subresource": "",
    "namespace": "",
    "name": "",
}


class GatewayAudit:
    def __init__(self, store: AuditStore) -> None:
        self._store = store

    def _append(self, kind: str, opening: SessionOpening, caller: Caller, **fields: Any) -> None:
        self._store.append(
            new_event(
                kind,
                session_id=opening.session_id,
                subject=opening.identity.subject,
                cluster=opening.cluster,
                identity=identity_dict(opening.identity, opening.matched_claims),
                source_ip=caller.source_ip,
                user_agent=caller.user_agent,
                **fields,
            )
        )

    def session_event(
        self, kind: str, session: GatewaySession, caller: Caller, **fields: Any
    ) -> None:
        opening = SessionOpening(
            session.session_id,
            session.identity,
            session.matched_claims,
            session.cluster,
            session.policy,
        )
        self._append(kind, opening, caller, **fields)

    def token_issued(
        self, kind: str, opening: SessionOpening, caller: Caller, detail: Mapping[str, Any]
    ) -> None:
        self._append(
            kind,
            opening,
            caller,
            decision={
                "effect": "allow",
                "policy": opening.policy,
                "rule": "",
                "reason": "token issued",
            },
            detail=dict(detail),
        )

    def refusal(
        self,
        authenticated: Authenticated,
        exchange: Exchange | None,
        decision: Decision | None,
        error: EksgateError,
        approval_id: str | None = None,
    ) -> None:
        """A request answered with a refusal; ``exchange`` is None when it was refused before
        it could be resolved. The query is recorded as it would have been forwarded, so a
        replay (``eksgate policy simulate``) resolves the request as the gateway did."""
        incoming = authenticated.incoming
        request = exchange.request if exchange else None
        recorded = (
            request_dict(exchange.request, incoming.method, exchange.forwarded_query)
            if exchange
            else {"method": incoming.method, "path": incoming.path, **_UNRESOLVED_REQUEST}
        )
        recorded["audit_id"] = incoming.audit_id
        # What was tried, masked like a forwarded body: refusals answer "what did it try".
        tried = (
            masked_body_summary(
                incoming.body,
                authenticated.policy.masking,
                request.resource_with_subresource,
                kind_for_resource(request.api_group, request.resource, request.subresource),
            )
            if request
            else None
        )
        self.session_event(
            "refusal",
            authenticated.session,
            incoming.caller,
            request=recorded,
            decision=decision_dict(decision) if decision else None,
            approval_id=approval_id,
            request_body=tried,
            detail={"status": error.status, "reason": error.reason, "message": error.message},
        )

    def request(self, exchange: Exchange, decision: Decision, approval_id: str | None) -> None:
        """Before the exchange is forwarded: no record, no forward."""
        self.session_event(
            "request",
            exchange.session,
            exchange.caller,
            request=_recorded_request(exchange),
            decision=decision_dict(decision),
            approval_id=approval_id,
            request_body=masked_body_summary(
                exchange.body,
                exchange.policy.masking,
                exchange.request.resource_with_subresource,
                kind_for_resource(
                    exchange.request.api_group,
                    exchange.request.resource,
                    exchange.request.subresource,
                ),
            ),
        )

    def gateway_request(self, exchange: Exchange, decision: Decision, call: GatewayCall) -> None:
        """The gateway's own request for this exchange (a dry run, a read of the current
        object) reaches the cluster too: no record, no forward holds for it as for the request
        itself. Recorded as sent, under its own Audit-ID, with the client request it serves."""
        self.session_event(
            "gateway_request",
            exchange.session,
            exchange.caller,
            request=_gateway_call_request(exchange, call),
            decision=decision_dict(decision),
            detail=_gateway_call_detail(call),
        )

    def gateway_response(self, exchange: Exchange, call: GatewayCall, outcome: Outcome) -> None:
        """The cluster's answer to the gateway's own request: its status only (the dry run's
        answer reaches people as the approver's diff, whose hash the approval records)."""
        detail = _gateway_call_detail(call)
        if outcome.error:
            detail["error"] = outcome.error
        self.session_event(
            "gateway_response",
            exchange.session,
            exchange.caller,
            request=_gateway_call_request(exchange, call),
            upstream_status=outcome.status,
            latency_ms=None if outcome.latency_ms is None else round(outcome.latency_ms, 1),
            detail=detail,
        )

    def response(self, exchange: Exchange, outcome: Outcome) -> None:
        """After the cluster answered (or failed to): no record, no answer."""
        detail: dict[str, Any] = {}
        if outcome.error:
            detail["error"] = outcome.error
        if outcome.note:
            detail["outcome"] = outcome.note
        self.session_event(
            "response",
            exchange.session,
            exchange.caller,
            request=_recorded_request(exchange),
            upstream_status=outcome.status,
            latency_ms=None if outcome.latency_ms is None else round(outcome.latency_ms, 1),
            response_body=summarize_body(outcome.masked_body) if outcome.masked_body else None,
            detail=detail,
        )

    def approval_event(
        self, kind: str, approval: Approval, caller: Caller, detail: Mapping[str, Any]
    ) -> None:
        """An approval's event (expired, a refused click), in the session that asked for it."""
        self._store.append(_approval_fields(kind, approval, caller, detail))

    def decision_witness(self, caller: Caller) -> DecisionRecorder:
        """What records a Slack decision in the same transaction as the decision itself."""
        return DecisionRecorder(self._store, caller)


class DecisionRecorder:
    """``approvals.store.DecisionWitness`` on the audit trail: one ``approval_decided``
    record per decision, naming the person whose conditional write won, written in one
    transaction with that write (no record, no decision; a lost click records nothing)."""

    def __init__(self, store: AuditStore, caller: Caller) -> None:
        self._store = store
        self._caller = caller

    def commit(
        self, approval: Approval, vote: Vote, outcome: str, update: Mapping[str, Any]
    ) -> bool:
        detail = {
            "action": vote.decision,
            "slack_user": vote.user_id,
            "approver": vote.email or vote.user_name,
            "outcome": outcome,
            "reason": vote.reason,
        }
        fields = _approval_fields("approval_decided", approval, self._caller, detail)
        return self._store.append_with(fields, update) is not None

    def refused(self, approval: Approval, slack_user: str, action: str, why: str) -> None:
        detail = {"action": action, "slack_user": slack_user, "outcome": "refused", "why": why}
        try:
            self._store.append(
                _approval_fields("approval_click_refused", approval, self._caller, detail)
            )
        except EksgateError:
            logger.exception(
                "refused click not recorded", extra={"approval_id": approval.approval_id}
            )


def _approval_fields(
    kind: str, approval: Approval, caller: Caller, detail: Mapping[str, Any]
) -> dict[str, Any]:
    requester = Identity(
        subject=approval.requester_subject,
        issuer=str(approval.requester.get("issuer") or ""),
        email=approval.requester_email,
    )
    return new_event(
        kind,
        session_id=approval.session_id,
        subject=requester.subject,
        cluster=approval.cluster,
        identity=identity_dict(requester, {}),
        source_ip=caller.source_ip,
        user_agent=caller.user_agent,
        approval_id=approval.approval_id,
        decision={
            "effect": "approve",
            "policy": approval.policy,
            "rule": approval.rule,
            "reason": approval.reason,
        },
        detail=dict(detail),
    )


def _recorded_request(exchange: Exchange) -> dict[str, Any]:
    """The request as forwarded: the same query string the cluster receives, watches included,
    and the Audit-ID it carries (the join to the cluster's own audit event)."""
    recorded = request_dict(exchange.request, exchange.method, exchange.forwarded_query)
    recorded["audit_id"] = exchange.incoming.audit_id
    return recorded


def _gateway_call_request(exchange: Exchange, call: GatewayCall) -> dict[str, Any]:
    """The gateway's own request as sent: its method, verb, query and Audit-ID."""
    recorded = request_dict(exchange.request, call.method, call.query)
    recorded.update(verb=call.verb, audit_id=call.audit_id)
    return recorded


def _gateway_call_detail(call: GatewayCall) -> dict[str, Any]:
    return {"gateway_call": call.purpose, "for_audit_id": call.for_audit_id}
