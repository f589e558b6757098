"""Approvals: risky requests wait for a human decision in Slack.

One module per concern: ``model`` (the record), ``fingerprint`` (what an approval is bound
to), ``store`` (DynamoDB, conditional writes), ``slack_directory`` (who is who in Slack),
``authorization`` (who may decide), ``diff`` and ``messages`` (what approvers see),
``interactions`` (verifying and reading Slack's requests) and ``service`` (the workflow).
"""

from chalicelib.approvals.errors import ApprovalsUnavailable, SlackUnavailable
from chalicelib.approvals.interactions import Interaction, parse_interaction, verify_slack_request
from chalicelib.approvals.model import Approval
from chalicelib.approvals.service import ApprovalService
from chalicelib.approvals.slack_directory import SlackDirectory, SlackUser
from chalicelib.approvals.store import ApprovalStore, DecisionOutcome, DynamoApprovalStore

__all__ = [
    "Approval",
    "ApprovalService",
    "ApprovalStore",
    "ApprovalsUnavailable",
    "DecisionOutcome",
    "DynamoApprovalStore",
    "Interaction",
    "SlackDirectory",
    "SlackUnavailable",
    "SlackUser",
    "parse_interaction",
    "verify_slack_request",
]
