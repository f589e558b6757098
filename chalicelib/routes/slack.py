"""``POST /slack/interactions``: Approve/Deny clicks and the deny-reason form, from Slack.

The signature is verified on the raw body before anything is parsed. Every interaction on a
known approval is recorded in the requesting session's audit trail: a decision in the same
transaction as the decision (no record, no decision), a refused click as refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.errors import EksgateError
from chalicelib.identity import Caller
from chalicelib.observability import count, logger
from chalicelib.services import Services
from chalicelib.slack.interactions import parse_interaction, verify_slack_request


def handle_slack_interaction(
    services: Services, headers: Mapping[str, str], raw_body: bytes, caller: Caller
) -> dict[str, Any] | None:
    """The body to answer Slack with (None: an empty 200); EksgateError for bad requests."""
    try:
        credentials = services.slack_credentials.get()
        verify_slack_request(credentials.signing_secret, headers, raw_body)
        interaction = parse_interaction(raw_body)
    except EksgateError as refusal:
        count("SlackInteractionsRefused")
        logger.warning(
            "slack interaction refused", extra={"status": refusal.status, "reason": refusal.message}
        )
        raise
    # Each decision is recorded in the requester's session by the transaction that makes it,
    # naming the one whose click won; refused clicks are recorded as refused.
    answer = services.approvals.handle_interaction(
        interaction, services.audit.decision_witness(caller)
    )
    count("SlackInteractions")
    return answer


def expire_approvals(services: Services) -> int:
    """The schedule's work: expire overdue approvals, update their messages, record it."""
    expired = services.approvals.expire_overdue()
    for approval in expired:
        if approval.session_id:
            try:
                services.audit.approval_event(
                    "approval_expired", approval, Caller(), {"outcome": "expired"}
                )
            except EksgateError:
                logger.exception(
                    "approval expiry not recorded", extra={"approval_id": approval.approval_id}
                )
    if expired:
        logger.info("approvals expired", extra={"count": len(expired)})
    return len(expired)
