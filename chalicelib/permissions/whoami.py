"""``GET /v1/whoami``: a session and its policy, told to the agent that holds the session.

An agent should learn what it may do by asking, not by being refused. This summary says who
the gateway believes the caller is (as verified), which policy and session apply, and every
rule of that policy sorted into allowed / needs approval / denied, so a tool description or a
person can read it. It shows what the policy says, never credentials or matched secrets.
"""

from __future__ import annotations

import time
from typing import Any

from chalicelib.credentials.session_token import GatewaySession
from chalicelib.kube.request import KubeRequest
from chalicelib.policy.model import Policy, Rule

EFFECT_SECTIONS = {"allow": "allowed", "approve": "needs_approval", "deny": "denied"}


def _iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def identity_summary(session: GatewaySession) -> dict[str, Any]:
    """Who the gateway verified: issuer and subject; an unverified email is marked so."""
    identity = session.identity
    email: dict[str, Any] | None = None
    if identity.email:
        email = {"address": identity.email, "verified": True}
    elif identity.claimed_email:
        # Shown so the caller knows it was seen, and that it grants nothing.
        email = {"address": identity.claimed_email, "verified": False}
    return {
        "issuer": identity.issuer,
        "subject": identity.subject,
        "email": email,
        "groups": list(identity.groups),
        "matched_claims": dict(session.matched_claims),
    }


def rule_summary(rule: Rule) -> dict[str, Any]:
    """One rule as a reader needs it: what it covers, why, and how approval works."""
    summary: dict[str, Any] = {
        "rule": rule.label,
        "verbs": list(rule.verbs),
        "reason": rule.reason,
    }
    if rule.non_resource_urls:
        summary["non_resource_urls"] = list(rule.non_resource_urls)
    if rule.resources:
        summary["api_groups"] = list(rule.api_groups)
        summary["resources"] = list(rule.resources)
        summary["namespaces"] = list(rule.namespaces) or ["*"]
        summary["names"] = list(rule.resource_names) or ["*"]
    if rule.effect == "approve" and rule.approval:
        approval = rule.approval
        summary["approval"] = {
            "mode": approval.mode,
            "approvers": list(rule.approvers),
            "min_approvers": approval.min_approvers,
            "request_ttl_seconds": approval.ttl_seconds,
            "direct": approval.direct,
        }
        if approval.mode == "grant":
            summary["approval"]["window_seconds"] = approval.window_seconds
    return summary


def rules_summary(policy: Policy) -> dict[str, list[dict[str, Any]]]:
    """The policy's rules by effect: ``allowed``, ``needs_approval``, ``denied``."""
    sections: dict[str, list[dict[str, Any]]] = {name: [] for name in EFFECT_SECTIONS.values()}
    for rule in policy.rules:
        sections[EFFECT_SECTIONS[rule.effect]].append(rule_summary(rule))
    return sections


def whoami(session: GatewaySession, policy: Policy, now: float | None = None) -> dict[str, Any]:
    """The JSON answer of ``GET /v1/whoami`` for a verified ``session`` under ``policy``."""
    if policy.name != session.policy:
        raise ValueError(f"session {session.session_id} is under policy {session.policy!r}")
    current = int(time.time() if now is None else now)
    return {
        "kind": "WhoAmI",
        "identity": identity_summary(session),
        "cluster": session.cluster,
        "policy": {"name": policy.name, "description": policy.description},
        "session": {
            "id": session.session_id,
            "issued_at": _iso(session.issued_at),
            "expires_at": _iso(session.expires_at),
            "expires_in_seconds": max(0, session.expires_at - current),
        },
        "rules": rules_summary(policy),
        "how_decided": (
            "deny beats approve beats allow; a request no rule matches is denied; API "
            "discovery (/api, /apis, /version) is open to every session"
        ),
    }


def whoami_text(answer: dict[str, Any]) -> str:
    """A person's (and a tool description's) reading of a whoami answer."""
    identity = answer.get("identity") or {}
    email = identity.get("email") or {}
    who = identity.get("subject", "?")
    if email:
        who += f" <{email.get('address')}>" + ("" if email.get("verified") else " (unverified)")
    session = answer.get("session") or {}
    lines = [
        f"identity: {who}, issuer {identity.get('issuer', '?')}",
        f"groups: {', '.join(identity.get('groups') or []) or '(none)'}",
        f"cluster {answer.get('cluster', '?')}, policy {(answer.get('policy') or {}).get('name')}",
        f"session {session.get('id', '?')} expires {session.get('expires_at', '?')}",
    ]
    headings = {
        "allowed": "allowed",
        "needs_approval": "needs a human's approval",
        "denied": "denied",
    }
    rules = answer.get("rules") or {}
    for section, heading in headings.items():
        entries = rules.get(section) or []
        lines.append(f"{heading}:" + ("" if entries else " (nothing)"))
        lines.extend(f"  - {_rule_line(entry)}" for entry in entries)
    if answer.get("how_decided"):
        lines.append(answer["how_decided"])
    return "\n".join(lines)


def _rule_line(entry: dict[str, Any]) -> str:
    verbs = ",".join(entry.get("verbs") or [])
    if entry.get("non_resource_urls"):
        text = f"{verbs} {','.join(entry['non_resource_urls'])}"
    else:
        groups = [g for g in entry.get("api_groups") or [] if g not in ("", "*")]
        text = f"{verbs} {','.join(entry.get('resources') or [])}"
        if groups:
            text += f" (apiGroups {','.join(groups)})"
        text += f" in namespaces {','.join(entry.get('namespaces') or ['*'])}"
        if entry.get("names") and entry["names"] != ["*"]:
            text += f" named {','.join(entry['names'])}"
    text += f" [{entry.get('rule')}]"
    approval = entry.get("approval")
    if approval:
        text += (
            f" approval {approval.get('mode')} by {','.join(approval.get('approvers') or [])}"
            f" (min {approval.get('min_approvers')})"
        )
    if entry.get("reason"):
        text += f": {entry['reason']}"
    return text


def is_identity_review(request: KubeRequest) -> bool:
    """Is ``request`` ``kubectl auth whoami`` (a SelfSubjectReview, any version)?

    The gateway answers it from the session: the cluster would name the policy's IAM role,
    which is who the gateway is, not who the caller is.
    """
    return (
        request.is_resource_request
        and request.verb == "create"
        and request.api_group == "authentication.k8s.io"
        and request.resource == "selfsubjectreviews"
        and request.api_version in ("v1", "v1beta1", "v1alpha1")
        and not request.subresource
        and not request.name
    )


def identity_review(session: GatewaySession, api_version: str) -> dict[str, Any]:
    """The SelfSubjectReview answer for ``session``: the verified subject, its groups, and the
    eksgate policy, session and cluster as ``extra`` (what `kubectl auth whoami` prints)."""
    identity = session.identity
    return {
        "apiVersion": f"authentication.k8s.io/{api_version}",
        "kind": "SelfSubjectReview",
        "metadata": {"creationTimestamp": None},
        "status": {
            "userInfo": {
                "username": identity.subject,
                "groups": list(identity.groups),
                "extra": {
                    "eksgate.io/issuer": [identity.issuer],
                    "eksgate.io/policy": [session.policy],
                    "eksgate.io/session": [session.session_id],
                    "eksgate.io/cluster": [session.cluster],
                },
            }
        },
    }
