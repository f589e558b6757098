"""Audit records as evidence about policies: who asked for what, and how it was decided.

Replay resolves the recorded method, path and query with the gateway's own resolver
(``chalicelib.kube.request.resolve``) and decides with its own engine (``chalicelib.policy``),
so a simulation can never disagree with the gateway about what a request means.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from chalicelib.audit.records import SessionRecord
from chalicelib.errors import EksgateError, Forbidden
from chalicelib.identity import Identity
from chalicelib.kube.request import KubeRequest, resolve
from chalicelib.policy import Decision, Policy, select_policy
from chalicelib.policy.engine import decide_request

# Records that carry a policy decision about a Kubernetes request.
DECIDED_KINDS = ("request", "refusal")


@dataclass(frozen=True)
class Evidence:
    """One decided request from the trail: what it was, how it was decided, whether it ran."""

    record: SessionRecord
    request: KubeRequest
    effect: str  # the recorded decision: allow | approve | deny
    policy: str
    rule: str
    forwarded: bool  # a "request" record: it reached the cluster


def _text(mapping: Mapping[str, Any] | None, key: str) -> str:
    value = (mapping or {}).get(key)
    return value if isinstance(value, str) else ""


def replayed_request(
    recorded: Mapping[str, Any], detail: Mapping[str, Any] | None = None
) -> KubeRequest:
    """The recorded request resolved again; EksgateError if it no longer resolves.

    Refusal records carry no query, and a query is what makes a GET a watch: when the
    recorded verb is ``watch`` and the query is missing, the recorded verb is kept. An exec
    through ``/v1/exec`` keeps its argv in the record's ``detail``; a ``pods/exec`` rule that
    names commands decides by it, so the replay carries it too.
    """
    request = resolve(_text(recorded, "method"), _text(recorded, "path"), _text(recorded, "query"))
    verb = _text(recorded, "verb")
    if not _text(recorded, "query") and verb == "watch" and request.verb == "list":
        request = replace(request, verb="watch")
    argv = _exec_argv(detail)
    if argv is not None and request.subresource == "exec":
        request = replace(request, command=argv)
    return request


def _exec_argv(detail: Mapping[str, Any] | None) -> tuple[str, ...] | None:
    exec_detail = (detail or {}).get("exec")
    argv = exec_detail.get("argv") if isinstance(exec_detail, Mapping) else None
    if isinstance(argv, list) and argv and all(isinstance(part, str) for part in argv):
        return tuple(argv)
    return None


def evidence(records: Iterable[SessionRecord]) -> list[Evidence]:
    """Every decided request among ``records`` (refusals before any decision are skipped)."""
    found = []
    for record in records:
        if record.kind not in DECIDED_KINDS or not record.request or not record.decision:
            continue
        effect = _text(record.decision, "effect")
        if effect not in ("allow", "approve", "deny"):
            continue
        try:
            request = replayed_request(record.request, record.detail)
        except (EksgateError, TypeError):
            continue
        found.append(
            Evidence(
                record,
                request,
                effect,
                _text(record.decision, "policy"),
                _text(record.decision, "rule"),
                record.kind == "request",
            )
        )
    return found


def recorded_identity(record: SessionRecord) -> Identity:
    """The caller as far as the trail knows them.

    Records keep the subject, issuer, verified email, groups and the claims the applied
    policy checked (``matched_claims``), not every claim: a policy matching on another claim
    cannot be matched in a replay.
    """
    identity = record.identity if isinstance(record.identity, dict) else {}
    matched = identity.get("matched_claims")
    groups = identity.get("groups")
    groups = [g for g in groups if isinstance(g, str)] if isinstance(groups, list) else []
    claims: dict[str, Any] = dict(matched) if isinstance(matched, dict) else {}
    email = identity.get("email") if isinstance(identity.get("email"), str) else None
    claims.update(
        {
            "iss": _text(identity, "issuer"),
            "sub": _text(identity, "subject") or record.subject,
            "groups": groups,
        }
    )
    if email:
        claims["email"] = email
    return Identity(
        subject=claims["sub"],
        issuer=claims["iss"],
        email=email,
        groups=tuple(groups),
        claims=claims,
    )


def replay_decision(
    identity: Identity, cluster: str, request: KubeRequest, policies: Iterable[Policy]
) -> Decision:
    """What the gateway would decide with ``policies``: the policy for the caller, discovery
    open to every session, then the policy's rules."""
    try:
        policy = select_policy(identity, cluster, policies)
    except Forbidden as refusal:
        return Decision("deny", "", None, refusal.message)
    return decide_request(policy, request)
