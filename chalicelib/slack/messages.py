"""Slack Block Kit for approvals: the request, its outcome, the Deny form, short replies.

Pure builders returning ``(text, blocks)``: ``text`` is the notification and accessibility
fallback Slack wants beside blocks. Everything a requester controls (names, namespaces, the
subject, the diff) and every approver's deny reason is escaped, so no one can ping a channel
or forge a link through a request. Slack's limits are respected by construction: header 150
characters, section text 3000, field 2000, button text 75, at most 50 blocks.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from chalicelib.approvals.authorization import describe_approvers
from chalicelib.approvals.diff import truncate_lines
from chalicelib.approvals.model import APPROVED, DENIED, DENY, EXPIRED, GRANT, USED, Approval

APPROVE_ACTION = "eksgate_approve"
DENY_ACTION = "eksgate_deny"
DENY_CALLBACK = "eksgate_deny_reason"
REASON_BLOCK = "reason"
REASON_ACTION = "reason"
ACTIONS_BLOCK = "eksgate_decision"

MAX_HEADER = 150
MAX_SECTION = 3000
MAX_FIELD = 2000
MAX_BLOCKS = 50
MAX_BUTTON = 75
MAX_TEXT = 3000
MAX_DENY_REASON = 1000

Blocks = list[dict[str, Any]]


def escape(text: str) -> str:
    """Slack mrkdwn escaping: the three characters Slack gives control meaning."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_date(epoch: int) -> str:
    """A date Slack shows in each reader's own time zone, with a UTC fallback."""
    fallback = dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{int(epoch)}^{{date_short_pretty}} {{time}}|{fallback}>"


def describe(approval: Approval) -> str:
    """``patch deployments.apps web in shop``: what is asked, in kubectl's words."""
    request = approval.request
    # "restart deployments.apps web in shop": a known client-stamped change by what it does.
    verb = request.get("intent") or request.get("verb") or request.get("method", "").lower()
    resource = request.get("resource") or ""
    if not resource:
        return f"{verb} {request.get('path', '')}"
    if request.get("api_group"):
        resource += f".{request['api_group']}"
    if request.get("subresource"):
        resource += f"/{request['subresource']}"
    text = f"{verb} {resource}"
    if request.get("name"):
        text += f" {request['name']}"
    if request.get("namespace"):
        text += f" in {request['namespace']}"
    return text


def requester_display(approval: Approval) -> str:
    """The requester by verified facts: subject and issuer, their verified email, and any
    email their token claimed without verification, marked as such."""
    subject = approval.requester_subject or "(unknown subject)"
    who = f"{subject} (issuer {approval.requester.get('issuer') or '?'})"
    if approval.requester_is_workload:
        who += ", a workload"
    if approval.requester_email:
        who = f"{approval.requester_email} (verified), {who}"
    elif approval.requester_claimed_email:
        who += f", claims {approval.requester_claimed_email} (UNVERIFIED)"
    return who


def request_blocks(approval: Approval, requester: str | None = None) -> tuple[str, Blocks]:
    """The approval request with Approve and Deny buttons (and progress towards
    ``min_approvers`` once someone approved)."""
    who = requester or requester_display(approval)
    title = f"Approval needed: {describe(approval)}"
    # The notification text is mrkdwn too: everything the requester controls is escaped.
    text = _cut(escape(f"{title} on {approval.cluster}, requested by {who}"), MAX_TEXT)
    blocks = [
        _header(title),
        _facts(approval, who),
        *_query_blocks(approval),
        *_diff_blocks(approval),
    ]
    approvals = approval.approve_decisions()
    if approvals:
        blocks.append(
            _section(
                f"Approved so far by {_people(approvals)} "
                f"({len(approvals)} of {approval.min_approvers} needed)."
            )
        )
    blocks.append(_context(approval))
    blocks.append(
        {
            "type": "actions",
            "block_id": ACTIONS_BLOCK,
            "elements": [
                _button("Approve", APPROVE_ACTION, "primary", approval.approval_id),
                _button("Deny", DENY_ACTION, "danger", approval.approval_id),
            ],
        }
    )
    return text, blocks[:MAX_BLOCKS]


def decided_blocks(approval: Approval) -> tuple[str, Blocks]:
    """The request with its outcome (who approved or denied, when, why), without buttons."""
    who = requester_display(approval)
    if approval.status == DENIED:
        denial = next((d for d in approval.decisions if d.get("decision") == DENY), {})
        title = f"Denied: {describe(approval)}"
        outcome = f":no_entry: *Denied* by {_person(denial)}"
        if denial.get("reason"):
            outcome += f": {escape(str(denial['reason']))}"
        text = escape(
            f"Denied by {denial.get('user_name') or denial.get('user_id')}: {describe(approval)}"
        )
    elif approval.status in (APPROVED, USED):
        title = f"Approved: {describe(approval)}"
        outcome = f":white_check_mark: *Approved* by {_people(approval.approve_decisions())}."
        if approval.mode == GRANT and approval.window_ends_at is not None:
            outcome += f" The access window is open until {slack_date(approval.window_ends_at)}."
        elif approval.status == USED and approval.used_at is not None:
            outcome += f" The request was carried out {slack_date(approval.used_at)}."
        else:
            outcome += (
                f" The requester can retry the request until {slack_date(approval.expires_at)}."
            )
        names = ", ".join(
            str(d.get("user_name") or d.get("user_id")) for d in approval.approve_decisions()
        )
        text = escape(f"Approved by {names}: {describe(approval)}")
    else:
        return expired_blocks(approval) if approval.status == EXPIRED else request_blocks(approval)
    blocks = [
        _header(title),
        _facts(approval, who, expiry=False),
        *_query_blocks(approval),
        *_diff_blocks(approval),
        _section(outcome),
        _context(approval),
    ]
    return _cut(text, MAX_TEXT), blocks


def expired_blocks(approval: Approval) -> tuple[str, Blocks]:
    """The request, marked expired without a decision, without buttons."""
    title = f"Expired: {describe(approval)}"
    outcome = (
        f":hourglass: *Expired* {slack_date(approval.expires_at)} without a decision. "
        "The requester has to make the request again to ask anew."
    )
    partial = approval.approve_decisions()
    if partial:
        outcome += (
            f" It had {len(partial)} of {approval.min_approvers} approvals ({_people(partial)})."
        )
    blocks = [
        _header(title),
        _facts(approval, requester_display(approval), expiry=False),
        *_query_blocks(approval),
        *_diff_blocks(approval),
        _section(outcome),
        _context(approval),
    ]
    return _cut(escape(f"Expired without a decision: {describe(approval)}"), MAX_TEXT), blocks


def message_for(approval: Approval) -> tuple[str, Blocks]:
    """The message an approval should show in its current state."""
    if approval.status in (APPROVED, DENIED, USED):
        return decided_blocks(approval)
    if approval.status == EXPIRED:
        return expired_blocks(approval)
    return request_blocks(approval)


def deny_reason_modal(approval_id: str) -> dict[str, Any]:
    """The form that asks a denier why (the reason goes to the requester and the channel)."""
    return {
        "type": "modal",
        "callback_id": DENY_CALLBACK,
        "private_metadata": approval_id,
        "title": {"type": "plain_text", "text": "Deny request"},
        "submit": {"type": "plain_text", "text": "Deny"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "label": {"type": "plain_text", "text": "Why are you denying this request?"},
                "hint": {
                    "type": "plain_text",
                    "text": "The requester and the approvals channel will see this.",
                },
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_ACTION,
                    "multiline": True,
                    "max_length": MAX_DENY_REASON,
                },
            }
        ],
    }


def refusal_text(explanation: str) -> str:
    """An ephemeral reply to a click that was refused (nothing changed)."""
    return _cut(f":no_entry_sign: {explanation} Nothing was changed.", MAX_TEXT)


def unknown_approval_text(approval_id: str) -> str:
    """The reply to a click on an approval eksgate does not know."""
    return _cut(
        f"eksgate has no approval `{escape(approval_id[:64])}`: it may have expired and been "
        "removed. The requester has to make the request again.",
        MAX_TEXT,
    )


def empty_reason_text() -> str:
    """The form error for a deny without a reason."""
    return "Please say why, so the requester knows what to change."


# -- pieces ---------------------------------------------------------------------------------


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _header(title: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": _cut(title, MAX_HEADER)}}


def _section(mrkdwn: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(mrkdwn, MAX_SECTION)}}


def _field(label: str, value: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": _cut(f"*{label}*\n{value}", MAX_FIELD)}


def _facts(approval: Approval, requester: str, *, expiry: bool = True) -> dict[str, Any]:
    request = approval.request
    resource = request.get("resource") or request.get("path") or ""
    if request.get("subresource"):
        resource += f"/{request['subresource']}"
    group = request.get("api_group") or "core"
    where = f"{request.get('namespace') or '(cluster-wide)'} / {request.get('name') or '(new)'}"
    if approval.mode == GRANT:
        mode = f"grant: every request of the rule for {_duration(approval.window_seconds)}"
    else:
        mode = "once: this exact request, one time"
    last = (
        ("Expires", slack_date(approval.expires_at))
        if expiry
        else ("Requested", escape(approval.created_at.replace("T", " ")[:16]) + " UTC")
    )
    fields = [
        ("Requester", escape(requester)),
        ("Cluster", escape(approval.cluster)),
        ("Verb", escape(request.get("verb") or "")),
        ("Resource", f"`{escape(resource)}` ({escape(group)})"),
        ("Namespace / name", escape(where)),
        ("Policy / rule", f"{escape(approval.policy)} / {escape(approval.rule)}"),
        ("Reason", escape(approval.reason) or "(none given)"),
        last,
        ("Approvers", f"{describe_approvers(approval.approvers)} (needs {approval.min_approvers})"),
        ("Mode", mode),
    ]
    return {"type": "section", "fields": [_field(label, value) for label, value in fields]}


def _query_blocks(approval: Approval) -> Blocks:
    """The request's query: a selector or propagation policy changes what is approved."""
    query = str(approval.request.get("query") or "")
    if not query:
        return []
    head, tail = "*Query*\n```\n", "\n```"
    text = escape(query).replace("```", "`\u200b``")
    return [_section(head + truncate_lines([text], MAX_SECTION - len(head) - len(tail)) + tail)]


def _diff_blocks(approval: Approval) -> Blocks:
    if not approval.diff:
        return []
    head, tail = "*What would change*\n```\n", "\n```"
    # Slack ends a code block at the first ``` inside it; a zero-width space keeps it open.
    lines = escape(approval.diff).replace("```", "`\u200b``").splitlines()
    body = truncate_lines(lines, MAX_SECTION - len(head) - len(tail))
    return [_section(head + body + tail)]


def _context(approval: Approval) -> dict[str, Any]:
    request = approval.request
    target = request.get("path", "")
    if request.get("query"):
        target += f"?{request['query']}"
    text = (
        f"Approval `{approval.approval_id}` · `{escape(request.get('method', ''))} "
        f"{escape(target)}`"
    )
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(text, MAX_SECTION)}]}


def _button(label: str, action_id: str, style: str, value: str) -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "style": style,
        "value": value,
        "text": {"type": "plain_text", "text": _cut(label, MAX_BUTTON)},
    }


def _person(decision: Mapping[str, Any]) -> str:
    when = f" at {slack_date(int(decision['time']))}" if decision.get("time") else ""
    return f"<@{decision.get('user_id')}>{when}"


def _people(decisions: tuple[Mapping[str, Any], ...]) -> str:
    return ", ".join(_person(d) for d in decisions) or "nobody"


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds % 60 == 0:
        return f"{seconds // 60} min"
    return f"{seconds} s"
