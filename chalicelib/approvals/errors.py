"""Errors of the approvals core. Both fail closed: nothing is approved while they last."""

from __future__ import annotations

from chalicelib.errors import ServiceUnavailable


class ApprovalsUnavailable(ServiceUnavailable):
    """The approvals table could not be read or written; no approval is assumed."""


class SlackUnavailable(ServiceUnavailable):
    """Slack could not be asked who someone is; no click is accepted without knowing."""
