"""Requests a rule sends for approval: find one that lets them through, or ask for one.

Mutating requests are tried upstream with ``dryRun=All`` first: one that would fail anyway
gets the cluster's own error and no human is bothered; one that would succeed is shown to
the approver as a diff of the current object against the result (both masked).
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable

from chalicelib.approvals.service import ApprovalService
from chalicelib.approvals.diff import changes_anything, mark_hidden_changes, object_diff
from chalicelib.approvals.model import Approval
from chalicelib.audit.records import decision_dict, request_dict
from chalicelib.errors import Forbidden
from chalicelib.identity import Identity
from chalicelib.kube.request import KubeRequest
from chalicelib.masking import MaskingSettings, mask_document
from chalicelib.policy import Decision
from chalicelib.audit.recorder import Caller, GatewayAudit
from chalicelib.credentials.session_token import GatewaySession
from chalicelib.gateway.upstream import UpstreamResponse

MUTATING_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})


class NoChange(Exception):
    """The dry run shows the write would change nothing: no one is asked, nothing is sent,
    and the dry run's answer (the object as it already is) goes back."""

    def __init__(self, response: UpstreamResponse) -> None:
        super().__init__("the write changes nothing")
        self.response = response


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
            self._consumed(session, caller, usable)
            return usable
        diff = ""
        if request.verb in MUTATING_VERBS and dry_run is not None:
            # The dry run and the read of the current object reach the cluster too: no
            # record, no forward holds for them as for the request itself.
            self._audit.session_event(
                "request",
                session,
                caller,
                request=request_dict(request, method, query),
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
                self._consumed(session, caller, redeemed)
                return redeemed
        raise approval_refusal(approval, channel)

    def _consumed(self, session: GatewaySession, caller: Caller, approval: Approval) -> None:
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
            detail={"mode": approval.mode, "approvers": approvers},
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
            proposed = json.loads(result.body) if result.body else {}
        except ValueError:
            proposed = {}
        if not isinstance(proposed, dict) or request.verb in ("delete", "deletecollection"):
            proposed = {}
        before = current() if current and request.name else None
        if before is not None and not changes_anything(
            before, proposed, subresource=request.subresource
        ):
            raise NoChange(result)
        # The diff is of masked objects (it goes to Slack), but a value whose change masking
        # hides is shown as changed: the approver must never see "equal" where it is not.
        masked_before = mask_document(before, masking) if before else None
        masked_proposed = mask_document(proposed, masking)
        if before is not None:
            masked_proposed = mark_hidden_changes(before, proposed, masked_before, masked_proposed)
        return object_diff(masked_before, masked_proposed)
