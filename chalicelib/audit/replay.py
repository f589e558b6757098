"""A session for people: each request as the kubectl command that makes it, plus events. Pure.

Event records are rendered from their ``detail``; the keys read are:
``approval_posted`` {"channel"}, ``approval_decided`` {"outcome": "approved" | "denied",
"slack_user", "approver"}, ``direct_token_issued`` {"role_arn"}; other kinds need none.

Everything printed passes through ``_printable``: records hold text that callers chose
(names, user agents, bodies), and a terminal must not execute escape sequences from it.
"""

from __future__ import annotations

import re
import shlex
import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

from chalicelib.audit.exec_replay import (
    exec_command_text,
    exec_outcome_text,
    exec_output_lines,
    exec_step,
)
from chalicelib.audit.records import SessionRecord, SessionSummary

# Resources with no namespace: listing them without -n is not "the default namespace".
_CLUSTER_SCOPED = frozenset(
    {
        "namespaces",
        "nodes",
        "persistentvolumes",
        "clusterroles",
        "clusterrolebindings",
        "customresourcedefinitions",
        "storageclasses",
        "priorityclasses",
        "apiservices",
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
        "csidrivers",
        "csinodes",
        "ingressclasses",
        "runtimeclasses",
        "volumeattachments",
        "certificatesigningrequests",
        "tokenreviews",
        "selfsubjectaccessreviews",
        "selfsubjectrulesreviews",
        "subjectaccessreviews",
        "componentstatuses",
    }
)
_RAW_COMMANDS = {
    "GET": "get",
    "HEAD": "get",
    "POST": "create",
    "PUT": "replace",
    "DELETE": "delete",
}
_COLLECTION_VERBS = frozenset({"list", "watch", "deletecollection"})
# C0/C1 controls (bar newline and tab, which callers split on) and bidirectional overrides,
# which can make a terminal line read differently from what it holds.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_INDENT = "      "


def kubectl_equivalent(request: Mapping[str, Any]) -> str:
    """The kubectl command that sends ``request`` (a record's ``request`` field).

    Bodies are not reconstructed: create and replace read the object from ``-f -``, with
    the resource type in parentheses as a hint.
    """
    resource = str(request.get("resource") or "")
    verb = str(request.get("verb") or "")
    if not resource or verb == "proxy":
        return _raw(request)
    query = urllib.parse.parse_qs(str(request.get("query") or ""), keep_blank_values=True)
    name = str(request.get("name") or "")
    subresource = str(request.get("subresource") or "")
    group = str(request.get("api_group") or "")
    kind = f"{resource}.{group}" if group else resource
    if resource == "namespaces" and name:
        kind = "namespace"  # reads as English: "kubectl delete namespace shop"
    where = _namespace_flags(request, resource, verb)
    special = _subresource_command(request, kind, where, query)
    if special is not None:
        return _join(special)
    named = [kind, name] if name else [kind]
    if verb in ("get", "list"):
        words = ["get", *named, *where]
    elif verb == "watch":
        words = ["get", *named, *where, "--watch"]
    elif verb == "create":
        return _join(["create", "-f", "-"], hint=named) + _tail(where + _selectors(query))
    elif verb == "update":
        return _join(["replace", "-f", "-"], hint=named) + _tail(where + _selectors(query))
    elif verb == "patch":
        words = ["patch", *named, *where]
    elif verb == "delete":
        words = ["delete", *named, *where]
    elif verb == "deletecollection":
        words = ["delete", kind, *where] + ([] if "labelSelector" in query else ["--all"])
    else:
        return _raw(request)
    if subresource:
        words += ["--subresource", subresource]
    return _join(words + _selectors(query))


def render_timeline(
    records: Sequence[SessionRecord], show_bodies: bool = False, details: bool = False
) -> list[str]:
    """One line per record, ``13:40:29.123  #3  kubectl get pods -n shop  allow (...)  200 12ms``.

    ``details`` adds indented lines with the decision's reason, the HTTP request and where
    it came from; ``show_bodies`` adds the recorded (already masked) bodies.
    """
    lines: list[str] = []
    for record in records:
        clock = record.time[11:23] if len(record.time) >= 23 else record.time
        lines.append(_printable(f"{clock}  #{record.seq}  {_describe(record)}"))
        lines += [_printable(text) for text in exec_output_lines(record)]
        if details:
            lines += [_INDENT + _printable(text) for text in _details(record)]
        if show_bodies:
            lines += _body_lines("request body", record.request_body)
            lines += _body_lines("response body", record.response_body)
    return lines


def render_sessions(summaries: Sequence[SessionSummary]) -> list[str]:
    """A table of sessions, one line each, under a header."""
    if not summaries:
        return ["no sessions match these filters"]
    header = ("SESSION", "SUBJECT", "CLUSTER", "FIRST", "LAST", "RECORDS", "DECISIONS", "APPROVALS")
    rows = [header] + [
        (
            s.session_id,
            s.subject or "-",
            s.cluster or "-",
            s.first_time,
            s.last_time,
            str(s.records),
            " ".join(f"{effect}:{count}" for effect, count in sorted(s.decisions.items())) or "-",
            str(s.approvals),
        )
        for s in summaries
    ]
    widths = [max(len(_printable(row[i])) for row in rows) for i in range(len(header))]
    return [
        "  ".join(
            _printable(cell).ljust(width) for cell, width in zip(row, widths, strict=False)
        ).rstrip()
        for row in rows
    ]


# The gateway's own requests for an approver's diff (chalicelib/gateway/gateway_calls.py).
_GATEWAY_CALLS = {
    "dry-run": "dry run (dryRun=All, changes nothing)",
    "current-object": "read of the current object",
}


def _describe(record: SessionRecord) -> str:
    kind = record.kind
    step = exec_step(record)
    if step is not None and kind in ("request", "refusal"):
        text = exec_command_text(record, step) + "  " + _decision_text(record.decision or {})
        return text + ("  not run" if kind == "refusal" else "")
    if step is not None and kind == "response":
        return exec_outcome_text(record, step)
    approval = _short(record.approval_id)
    decision = record.decision or {}
    detail = record.detail or {}
    if kind in ("request", "refusal"):
        parts = [kubectl_equivalent(record.request) if record.request else "(no request)"]
        if record.decision:
            parts.append(_decision_text(decision))
        if record.upstream_status is not None:
            parts.append(str(record.upstream_status))
        elif kind == "refusal":
            parts.append("not forwarded")
        if record.latency_ms is not None:
            parts.append(f"{round(record.latency_ms)}ms")
        if approval:
            parts.append(f"approval {approval}")
        return "  ".join(parts)
    if kind == "gateway_request":
        what = _GATEWAY_CALLS.get(str(detail.get("gateway_call")), "own request")
        command = kubectl_equivalent(record.request) if record.request else "(no request)"
        return f"gateway {what}: {command}"
    if kind in ("response", "gateway_response"):
        status = "no answer" if record.upstream_status is None else str(record.upstream_status)
        latency = f"  {round(record.latency_ms)}ms" if record.latency_ms is not None else ""
        return f"  -> {status}{latency}"
    if kind == "token_issued":
        policy = f" under policy {decision['policy']}" if decision.get("policy") else ""
        return f"gateway token issued to {record.subject} for cluster {record.cluster}{policy}"
    if kind == "direct_token_issued":
        role = f" (role {detail['role_arn']})" if detail.get("role_arn") else ""
        return f"direct EKS token issued to {record.subject} for cluster {record.cluster}{role}"
    if kind == "approval_requested":
        rule = decision.get("rule") or detail.get("rule")
        return f"approval {approval} requested" + (f" (rule {rule})" if rule else "")
    if kind == "approval_posted":
        channel = f" ({detail['channel']})" if detail.get("channel") else ""
        return f"approval {approval} posted to Slack{channel}"
    if kind == "approval_decided":
        return _decided_text(detail)
    if kind == "approval_consumed":
        return f"approval {approval} used"
    if kind == "approval_expired":
        return f"approval {approval} expired unanswered"
    return kind


def _decided_text(detail: Mapping[str, Any]) -> str:
    outcome = str(detail.get("outcome") or "decided")
    user, approver = detail.get("slack_user"), detail.get("approver")
    who = f"{user} ({approver})" if user and approver else str(user or approver or "someone")
    return f"{outcome} by {who}"


def _decision_text(decision: Mapping[str, Any]) -> str:
    effect, policy, rule = (str(decision.get(k) or "") for k in ("effect", "policy", "rule"))
    if not policy:
        return f"{effect} (no policy applies)"
    if not rule or rule.startswith("("):
        return f"{effect} ({policy}: {rule.strip('()') or 'no rule matched'})"
    return f"{effect} ({policy}/{rule})"


def _details(record: SessionRecord) -> list[str]:
    lines = []
    if record.decision and record.decision.get("reason"):
        lines.append(f"reason: {record.decision['reason']}")
    if record.request:
        target = str(record.request.get("path") or "")
        if record.request.get("query"):
            target += f"?{record.request['query']}"
        lines.append(f"http: {record.request.get('method') or '?'} {target}")
    if record.source_ip or record.user_agent:
        lines.append(f"from: {record.source_ip or '?'} ({record.user_agent or 'no user agent'})")
    if record.approval_id:
        lines.append(f"approval: {record.approval_id}")
    return lines


def _body_lines(label: str, body: Mapping[str, Any] | None) -> list[str]:
    if not body:
        return []
    if "inline" in body:
        text = str(body["inline"])
        return [f"{_INDENT}{label} ({body.get('size', len(text))} bytes):"] + [
            _INDENT + "  " + _printable(line) for line in text.splitlines()
        ]
    digest = str(body.get("sha256") or "")[:16]
    return [
        _printable(
            f"{_INDENT}{label}: {body.get('size', '?')} bytes, not recorded (sha256 {digest}…)"
        )
    ]


def _namespace_flags(request: Mapping[str, Any], resource: str, verb: str) -> list[str]:
    namespace = str(request.get("namespace") or "")
    if namespace and resource != "namespaces":
        return ["-n", namespace]
    if not namespace and verb in _COLLECTION_VERBS and resource not in _CLUSTER_SCOPED:
        return ["-A"]
    return []


def _subresource_command(
    request: Mapping[str, Any], kind: str, where: list[str], query: Mapping[str, list[str]]
) -> list[str] | None:
    subresource = str(request.get("subresource") or "")
    verb = str(request.get("verb") or "")
    name = str(request.get("name") or "")
    first = {key: values[0] for key, values in query.items() if values}
    if subresource == "log":
        words = ["logs", name, *where]
        if first.get("container"):
            words += ["-c", first["container"]]
        if first.get("follow") == "true":
            words.append("-f")
        if first.get("previous") == "true":
            words.append("--previous")
        if first.get("tailLines"):
            words.append(f"--tail={first['tailLines']}")
        return words
    if subresource in ("exec", "attach"):
        words = [subresource, name, *where]
        if first.get("container"):
            words += ["-c", first["container"]]
        if subresource == "exec" and query.get("command"):
            words += ["--", *query["command"]]
        return words
    if subresource == "portforward":
        return ["port-forward", f"pod/{name}", *where, *query.get("ports", [])]
    if subresource == "proxy":
        return ["get", "--raw", _raw_target(request)]
    if subresource == "scale" and verb in ("update", "patch"):
        return ["scale", kind, name, *where]
    return None


def _selectors(query: Mapping[str, list[str]]) -> list[str]:
    words: list[str] = []
    for value in query.get("labelSelector", []):
        words += ["-l", value]
    for value in query.get("fieldSelector", []):
        words += ["--field-selector", value]
    if query.get("dryRun"):
        words.append("--dry-run=server")
    return words


def _raw(request: Mapping[str, Any]) -> str:
    method = str(request.get("method") or request.get("verb") or "GET").upper()
    command = _RAW_COMMANDS.get(method)
    target = _raw_target(request)
    if command is None:
        return f"{method} {target} (no kubectl equivalent)"
    words = [command, "--raw", target]
    if method in ("POST", "PUT"):
        words += ["-f", "-"]
    return _join(words)


def _raw_target(request: Mapping[str, Any]) -> str:
    path = str(request.get("path") or "/")
    query = str(request.get("query") or "")
    return f"{path}?{query}" if query else path


def _join(words: Sequence[str], hint: Sequence[str] = ()) -> str:
    text = "kubectl " + " ".join(shlex.quote(word) for word in words)
    if hint:
        text += " (" + " ".join(shlex.quote(word) for word in hint) + ")"
    return text


def _tail(words: Sequence[str]) -> str:
    return "".join(" " + shlex.quote(word) for word in words)


def _short(approval_id: str | None) -> str:
    if not approval_id:
        return ""
    return approval_id if len(approval_id) <= 8 else approval_id[:8] + "…"


def _printable(text: str) -> str:
    return _UNPRINTABLE.sub(
        lambda m: (
            f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}"
        ),
        text,
    )
