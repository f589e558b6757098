"""``POST /slack/interactions``: Approve/Deny clicks and the deny-reason form, from Slack.

The signature is verified on the raw body before anything is parsed. Every interaction on a
known approval is recorded in the requesting session's audit trail, refused ones included.
"""

from __future__ import annotations

from typing import Any

from chalicelib.slack.interactions import parse_interaction, verify_slack_request
from chalicelib.errors import EksgateError
from chalicelib.observability import count, logger
from chalicelib.services import Services
from chalicelib.identity import Caller


def handle_slack_interaction(
    services: Services, headers: dict, raw_body: bytes, caller: Caller
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
    before = services.approvals.get(interaction.approval_id)
    answer = services.approvals.handle_interaction(interaction)
    after = services.approvals.get(interaction.approval_id)
    if after is not None and after.session_id:
        changed = before is None or (before.status, len(before.decisions)) != (
            after.status,
            len(after.decisions),
        )
        decided = after.decided_by(interaction.user_id) if changed else None
        try:
            services.audit.approval_event(
                "approval_decided",
                after,
                caller,
                {
                    "action": interaction.kind,
                    "slack_user": interaction.user_id,
                    "approver": (decided or {}).get("email") or (decided or {}).get("user_name"),
                    "outcome": after.status if changed else "refused or repeated: nothing changed",
                    "reason": (decided or {}).get("reason") or interaction.reason or "",
                },
            )
        except EksgateError:
            # The decision stands (Slack showed it); losing its audit line must be loud.
            logger.exception(
                "approval decision not recorded in the audit trail",
                extra={"approval_id": after.approval_id},
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
