"""Where the gateway meets approvals: find the approval that lets an exchange through, or ask.

The gateway tries a mutating request upstream with ``dryRun=All`` first and hands the result
here (``proposed_change``): one that would fail anyway gets the cluster's own error and no
human is bothered; one that would change nothing needs no one; one that would succeed is shown
to the approver as a diff of the current object against the result (both masked, with changes
masking would hide marked as changes).
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

from chalicelib.approvals.diff import changes_anything, mark_hidden_changes, object_diff
from chalicelib.approvals.fingerprint import ApprovalSubject
from chalicelib.approvals.model import Approval, ApprovalAsk
from chalicelib.approvals.service import ApprovalService
from chalicelib.audit.recorder import GatewayAudit
from chalicelib.errors import EksgateError, Forbidden
from chalicelib.gateway.exchange import Exchange
from chalicelib.gateway.upstream import UpstreamResponse
from chalicelib.kube.request import KubeRequest
from chalicelib.masking import MaskingSettings, kind_for_resource, mask_document
from chalicelib.observability import logger
from chalicelib.policy import Decision

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
    details: dict[str, Any] = {
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


def ask_for(exchange: Exchange, decision: Decision) -> ApprovalAsk:
    """The approval an exchange needs under the rule that decided it."""
    assert decision.rule is not None
    return ApprovalAsk(
        requester=exchange.session.identity,
        cluster=exchange.cluster,
        policy=decision.policy,
        rule=decision.rule,
        request=exchange.request,
        subject=ApprovalSubject.of(
            exchange.method,
            exchange.media_type,
            exchange.request.path,
            exchange.approval_query,
            exchange.body,
        ),
        session_id=exchange.session.session_id,
        workload=exchange.policy.workload,
    )


def proposed_change(
    request: KubeRequest, dry_run: UpstreamResponse, current: Any, masking: MaskingSettings
) -> str:
    """The approver's diff from the dry run's answer and the object as it is now (None when
    there is none). ``DryRunRefused`` when the cluster refused the dry run, ``NoChange`` when
    the write would change nothing."""
    if dry_run.status >= 400:
        raise DryRunRefused(dry_run)
    try:
        proposed = json.loads(dry_run.body) if dry_run.body else {}
    except ValueError:
        proposed = {}
    if not isinstance(proposed, dict) or request.verb in ("delete", "deletecollection"):
        proposed = {}
    if current is not None and not changes_anything(
        current, proposed, subresource=request.subresource
    ):
        raise NoChange(dry_run)
    # The diff is of masked objects (it goes to Slack), but a value whose change masking
    # hides is shown as changed: the approver must never see "equal" where it is not.
    kind = kind_for_resource(request.api_group, request.resource, request.subresource)
    masked_before = mask_document(current, masking, resource_kind=kind) if current else None
    masked_proposed = mask_document(proposed, masking, resource_kind=kind)
    if current is not None:
        masked_proposed = mark_hidden_changes(current, proposed, masked_before, masked_proposed)
    return object_diff(masked_before, masked_proposed)


class ApprovalGate:
    def __init__(
        self, service: ApprovalService, audit: GatewayAudit, *, wait_seconds: float, channel: str
    ) -> None:
        self._service = service
        self._audit = audit
        self._wait_seconds = wait_seconds
        self._channel = channel

    def find(self, exchange: Exchange, decision: Decision) -> Approval | None:
        """An approval that lets this exchange through now (used up if it is a ``once``)."""
        usable = self._service.find_usable(ask_for(exchange, decision))
        if usable:
            self._consumed(exchange, usable)
        return usable

    def ask(self, exchange: Exchange, decision: Decision, diff: str, max_wait: float) -> Approval:
        """Ask for approval, wait a little for it; the approval, or Forbidden saying why not."""
        rule = decision.rule
        assert rule is not None and rule.approval is not None
        channel = rule.approval.channel or self._channel
        approval = self._service.request(ask_for(exchange, decision), diff)
        if approval.status == "denied":
            raise approval_refusal(approval, channel)  # a human already said no
        self._audit.session_event(
            "approval_requested",
            exchange.session,
            exchange.caller,
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
                "audit_id": exchange.incoming.audit_id,
            },
        )
        if approval.slack_ts:
            self._audit.session_event(
                "approval_posted",
                exchange.session,
                exchange.caller,
                approval_id=approval.approval_id,
                detail={"channel": approval.slack_channel or self._channel},
            )
        approval = self._service.wait(
            approval.approval_id, max(0.0, min(self._wait_seconds, max_wait))
        )
        if approval.status == "approved":
            redeemed = self._service.redeem(approval)
            if redeemed:
                self._consumed(exchange, redeemed)
                return redeemed
        raise approval_refusal(approval, channel)

    def give_back(self, exchange: Exchange, approval: Approval) -> None:
        """The request this once-approval let through never reached the cluster: make the
        approval usable again, so a human need not approve the same thing twice."""
        if not self._service.give_back(approval):
            return
        try:
            self._audit.session_event(
                "approval_returned",
                exchange.session,
                exchange.caller,
                approval_id=approval.approval_id,
                detail={"why": "the request did not reach the cluster"},
            )
        except EksgateError:  # often why it was given back; the approval stands either way
            logger.warning("approval given back, unrecorded", extra={"id": approval.approval_id})

    def _consumed(self, exchange: Exchange, approval: Approval) -> None:
        approvers = [
            d.get("user_name") or d.get("user_id")
            for d in approval.decisions
            if d.get("decision") == "approve"
        ]
        self._audit.session_event(
            "approval_consumed",
            exchange.session,
            exchange.caller,
            approval_id=approval.approval_id,
            detail={
                "mode": approval.mode,
                "approvers": approvers,
                # The request this approval cleared, and the (masked) diff its approvers saw.
                "audit_id": exchange.incoming.audit_id,
                "diff_sha256": hashlib.sha256(approval.diff.encode()).hexdigest()
                if approval.diff
                else "",
            },
        )
