"""Requests a rule sends for approval: find one that lets them through, or ask for one.

Mutating requests are tried upstream with ``dryRun=All`` first: one that would fail anyway
gets the cluster's own error and no human is bothered; one that would succeed is shown to
the approver as a diff of the current object against the result (both masked).
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any, Callable

from chalicelib.approvals import ApprovalService
from chalicelib.approvals.diff import object_diff
from chalicelib.approvals.model import Approval
from chalicelib.audit.records import decision_dict, request_dict
from chalicelib.errors import Forbidden
from chalicelib.identity import Identity
from chalicelib.kube_request import KubeRequest
from chalicelib.masking import MaskingSettings, mask_document
from chalicelib.policy import Decision
from chalicelib.session_audit import Caller, GatewayAudit
from chalicelib.session_token import GatewaySession
from chalicelib.upstream import UpstreamResponse

MUTATING_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


class DryRunRefused(Exception):
    """The cluster refused the dry run: its answer goes back to the caller as is."""

    def __init__(self, response: UpstreamResponse) -> None:
        super().__init__(f"dry run refused with HTTP {response.status}")
        self.response = response


def _when(epoch: int | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch or 0))


def approval_refusal(approval: Approval, channel: str) -> Forbidden:
    """The 403 that tells the caller where their approval stands and what to do next."""
    details = {
        "name": approval.approval_id,
        "kind": "approval",
        "approval_id": approval.approval_id,
        "status": approval.status,
    }
    if approval.status == "denied":
        who = (
            ", ".join(
                d.get("user_name") or d.get("user_id", "?")
                for d in approval.decisions
                if d.get("decision") == "deny"
            )
            or "an approver"
        )
        reason = next((d.get("reason") for d in approval.decisions if d.get("reason")), "")
        return Forbidden(
            f"approval denied: request {approval.approval_id} was denied by {who}"
            + (f": {reason}" if reason else ""),
            details=details,
        )
    if approval.status in ("expired", "used"):
        return Forbidden(
            f"approval required: request {approval.approval_id} is "
            f"{approval.status}; run the same command again to ask again",
            details=details,
        )
    if approval.slack_error:
        return Forbidden(
            f"approval required: request {approval.approval_id} is recorded but Slack could not "
            f"be notified ({approval.slack_error}); ask an approver to look at it, then run the "
            f"same command again after it is approved (expires {_when(approval.expires_at)})",
            details=details,
        )
    where = channel or approval.slack_channel  # the name people know, not Slack's channel id
    return Forbidden(
        f"approval required: request {approval.approval_id} is waiting in {where}; run the "
        f"same command again after it is approved (expires {_when(approval.expires_at)})",
        details=details,
    )


class ApprovalGate:
    def __init__(
        self, service: ApprovalService, audit: GatewayAudit, *, wait_seconds: float, channel: str
    ) -> None:
        self._service = service
        self._audit = audit
        self._wait_seconds = wait_seconds
        self._channel = channel

    def clear(
        self,
        *,
        session: GatewaySession,
        caller: Caller,
        decision: Decision,
        request: KubeRequest,
        method: str,
        query: str,
        body: bytes | None,
        masking: MaskingSettings,
        dry_run: Callable[[], UpstreamResponse] | None,
        current: Callable[[], Any] | None,
        max_wait: float = float("inf"),
        audit_id: str = "",
    ) -> Approval:
        """The approval this request may go through under, or Forbidden saying why not."""
        rule = decision.rule
        assert rule is not None and rule.approval is not None
        channel = rule.approval.channel or self._channel
        identity: Identity = session.identity
        usable = self._service.find_usable(
            identity, session.cluster, decision.policy, rule, method, request.path, query, body
        )
        if usable:
            self._consumed(session, caller, usable, audit_id)
            return usable
        diff = ""
        if request.verb in MUTATING_VERBS and dry_run is not None:
            # The dry run and the read of the current object reach the cluster too: no
            # record, no forward holds for them as for the request itself.
            self._audit.session_event(
                "request",
                session,
                caller,
                request={**request_dict(request, method, query), "audit_id": audit_id},
                decision=decision_dict(decision),
                detail={"purpose": "dry run and current object, for the approver's diff"},
            )
            diff = self._dry_run_diff(request, dry_run, current, masking)
        approval = self._service.request(
            identity,
            session.cluster,
            decision.policy,
            rule,
            request,
            method,
            query,
            body,
            diff,
            session_id=session.session_id,
        )
        if approval.status == "denied":
            raise approval_refusal(approval, channel)  # a human already said no
        self._audit.session_event(
            "approval_requested",
            session,
            caller,
            approval_id=approval.approval_id,
            decision={
                "effect": "approve",
                "policy": decision.policy,
                "rule": decision.rule_label,
                "reason": decision.reason,
            },
            detail={
                "rule": decision.rule_label,
                "mode": approval.mode,
                "expires_at": approval.expires_at,
                "audit_id": audit_id,
            },
        )
        if approval.slack_ts:
            self._audit.session_event(
                "approval_posted",
                session,
                caller,
                approval_id=approval.approval_id,
                detail={"channel": approval.slack_channel or self._channel},
            )
        approval = self._service.wait(
            approval.approval_id, max(0.0, min(self._wait_seconds, max_wait))
        )
        if approval.status == "approved":
            redeemed = self._service.redeem(approval)
            if redeemed:
                self._consumed(session, caller, redeemed, audit_id)
                return redeemed
        raise approval_refusal(approval, channel)

    def _consumed(
        self, session: GatewaySession, caller: Caller, approval: Approval, audit_id: str = ""
    ) -> None:
        approvers = [
            d.get("user_name") or d.get("user_id")
            for d in approval.decisions
            if d.get("decision") == "approve"
        ]
        self._audit.session_event(
            "approval_consumed",
            session,
            caller,
            approval_id=approval.approval_id,
            detail={
                "mode": approval.mode,
                "approvers": approvers,
                # The request this approval cleared, and the (masked) diff its approvers saw.
                "audit_id": audit_id,
                "diff_sha256": hashlib.sha256(approval.diff.encode()).hexdigest()
                if approval.diff
                else "",
            },
        )

    @staticmethod
    def _dry_run_diff(
        request: KubeRequest,
        dry_run: Callable[[], UpstreamResponse],
        current: Callable[[], Any] | None,
        masking: MaskingSettings,
    ) -> str:
        result = dry_run()
        if result.status >= 400:
            raise DryRunRefused(result)
        try:
            proposed = mask_document(json.loads(result.body), masking) if result.body else {}
        except ValueError:
            proposed = {}
        before = current() if current and request.name else None
        before = mask_document(before, masking) if before else None
        if request.verb in ("delete", "deletecollection"):
            proposed = {}
        return object_diff(before, proposed if isinstance(proposed, dict) else {})
