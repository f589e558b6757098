"""Who may decide on an approval: checked when they click, never when the message is posted.

Pure: the clicker and group membership are passed in. The answer is None (may decide) or a
sentence for the clicker saying why not and, where it helps, who can.

The requester is told apart from approvers by verified facts only: a person by their verified
OIDC email against the clicker's Slack profile email, case-insensitively; a workload (a CI
job or agent, as its policy says) is no Slack member at all. A person without a verified email
cannot be told apart from anyone, so no one may decide (fail closed); an unverified email is
never compared. When Slack does not show the clicker's email (the app lacks the
``users:read.email`` scope), the clicker could be the requester, so the click is refused.
Under a two-person rule, two Slack accounts with one email are one person.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from chalicelib.approvals.model import APPROVE, PENDING, Approval, SlackUser

GROUP_PREFIX = "slack-group:"


def refusal_for(
    approval: Approval,
    clicker: SlackUser,
    group_members: Callable[[str], frozenset[str]],
    now: float,
) -> str | None:
    """None if ``clicker`` may approve or deny ``approval`` now; otherwise why not.

    Checked in order: the approval is still pending and unexpired, the clicker has not
    decided already, is not the requester, and is one of the rule's approvers (a Slack user
    id, or a member of a ``slack-group:<handle>``). Group lookups happen last, so clicks that
    are refused anyway cost no Slack call.
    """
    if approval.status != PENDING:
        return _settled(approval)
    if now >= approval.expires_at:
        return (
            f"This request expired at {_when(approval.expires_at)} without a decision. "
            "The requester has to make the request again to ask anew."
        )
    earlier = approval.decided_by(clicker.id)
    if earlier is not None:
        verb = "approved" if earlier.get("decision") == APPROVE else "denied"
        needed = approval.min_approvers
        return f"You already {verb} this request. A decision counts once per person" + (
            f"; it needs {needed} different approvers." if needed > 1 else "."
        )
    if clicker.deleted or clicker.is_bot:
        return "Only active human members of the workspace can decide on requests."
    not_requester = _requester_refusal(approval, clicker)
    if not_requester is not None:
        return not_requester
    if clicker.email is not None and approval.min_approvers > 1:
        same_person = _decided_as(approval, clicker.email)
        if same_person is not None:
            return (
                f"You already decided on this request from another Slack account with your "
                f"email ({same_person}); it needs {approval.min_approvers} different people."
            )
    elif approval.min_approvers > 1:
        return (
            "eksgate cannot see your Slack email address, so it cannot tell the approvers of "
            "this two-person rule apart; ask a Slack admin to grant the app users:read.email."
        )
    if not is_approver(clicker.id, approval.approvers, group_members):
        return (
            f"You are not one of the approvers of rule {approval.rule} of policy "
            f"{approval.policy}. Approvers: {describe_approvers(approval.approvers)}."
        )
    return None


def _requester_refusal(approval: Approval, clicker: SlackUser) -> str | None:
    """Why ``clicker`` cannot be proven not to be the requester, or None.

    A workload (its policy says its subjects are CI jobs or agents) is nobody in Slack. A
    person is told apart by their verified email against the clicker's Slack email; with no
    verified email there is nothing to tell them apart by, so no one may decide (fail closed).
    An unverified email the requester's token claimed is never compared: it could name anyone.
    """
    if approval.requester_is_workload:
        return None
    requester_email = approval.requester_email
    if requester_email is None:
        # Requester-controlled text (their subject) stays out: this goes to Slack as mrkdwn.
        return (
            "The requester has no verified email, so eksgate "
            "cannot prove that you are not them, and nobody can decide on this request. "
            "The requester's identity provider must send a verified email (or, if the "
            "requester is a CI job or agent, its policy must say workload: true)."
        )
    if clicker.email is None:
        return (
            "eksgate cannot see your Slack email address, so it cannot tell you apart "
            "from the requester; ask a Slack admin to grant the app users:read.email."
        )
    if _same_email(clicker.email, requester_email):
        return f"You made this request (as {requester_email}), so someone else has to decide on it."
    return None


def _decided_as(approval: Approval, email: str) -> str | None:
    """The Slack account that already decided with this email, if any."""
    for decision in approval.decisions:
        earlier = decision.get("email")
        if isinstance(earlier, str) and earlier and _same_email(earlier, email):
            return str(decision.get("user_name") or decision.get("user_id") or earlier)
    return None


def _same_email(a: str, b: str) -> bool:
    return a.strip().lower() == b.strip().lower()


def is_approver(
    user_id: str, approvers: tuple[str, ...], group_members: Callable[[str], frozenset[str]]
) -> bool:
    """True if the user is listed by id or belongs to a listed ``slack-group:``.

    Any other form of entry matches nobody: an approver list we do not understand must not
    let anyone in.
    """
    for entry in approvers:
        if entry.startswith(GROUP_PREFIX):
            if user_id in group_members(entry[len(GROUP_PREFIX) :]):
                return True
        elif entry == user_id:
            return True
    return False


def describe_approvers(approvers: tuple[str, ...]) -> str:
    """Approvers as Slack shows them: ``<@U0BOB>``, ``@platform-oncall``."""
    shown = [
        f"@{a[len(GROUP_PREFIX) :]}" if a.startswith(GROUP_PREFIX) else f"<@{a}>" for a in approvers
    ]
    return ", ".join(shown) or "(none)"


def _settled(approval: Approval) -> str:
    status = approval.status
    if status == "approved":
        who = ", ".join(f"<@{d.get('user_id')}>" for d in approval.approve_decisions())
        return f"This request was already approved{f' by {who}' if who else ''}."
    if status == "denied":
        who = next(
            (
                f" by <@{d.get('user_id')}>"
                for d in approval.decisions
                if d.get("decision") == "deny"
            ),
            "",
        )
        return f"This request was already denied{who}."
    if status == "used":
        return "This request was approved and has already been carried out."
    if status == "expired":
        return (
            f"This request expired at {_when(approval.expires_at)} without a decision. "
            "The requester has to make the request again to ask anew."
        )
    return f"This request is {status}, so it cannot be decided anymore."


def _when(epoch: int) -> str:
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
