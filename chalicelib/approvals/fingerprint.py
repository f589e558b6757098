"""What an approval is bound to: the exact request (``once``) or the requester's rule (``grant``).

Pure functions. Every value is hashed with a length prefix before the next one, so no choice
of path, query or body can make two different requests share a fingerprint by moving bytes
across a boundary (``/a`` + ``b=c`` against ``/ab`` + ``=c``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from chalicelib.policy.model import Rule

_VERSION = b"eksgate-approval-v1"


def _digest(kind: bytes, parts: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for part in (_VERSION, kind, *(p.encode("utf-8") for p in parts)):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def request_fingerprint(method: str, path: str, query_canonical: str, body: bytes | None) -> str:
    """SHA-256 over method, path, canonical query and the SHA-256 of the body.

    ``query_canonical`` must be ``kube.request.canonical_query(...)`` of the request, so the
    same parameters in another order give the same fingerprint. ``path`` is the Kubernetes API
    path as forwarded (without the gateway's ``/k8s/{cluster}`` prefix; the cluster is bound
    by the match key). No body and an empty body are the same request to the API server.
    """
    body_hash = hashlib.sha256(body or b"").hexdigest()
    return _digest(b"request", (method, path, query_canonical, body_hash))


@dataclass(frozen=True)
class ApprovalSubject:
    """What a ``once`` approval is bound to: this exact request, nothing like it.

    The body's media type is part of it: the same bytes as a merge, strategic-merge or JSON
    patch do different things. ``body_sha256`` stands for the body, which is not kept.
    """

    method: str
    media_type: str  # "" when there is no body
    path: str
    canonical_query: str
    body_sha256: str

    intent: str = ""  # a client-stamped change known by what it does ("restart"), not its bytes

    @classmethod
    def of(
        cls, method: str, media_type: str, path: str, canonical_query: str, body: bytes | None
    ) -> ApprovalSubject:
        intent = client_intent(method, path, media_type, body)
        # A known intent stands for its body: kubectl stamps each restart with a new time,
        # so the bytes differ on every retry while what is asked for does not.
        bound = f"intent:{intent}".encode() if intent else (body or b"")
        return cls(
            method,
            media_type if body else "",
            path,
            canonical_query,
            hashlib.sha256(bound).hexdigest(),
            intent,
        )

    @property
    def method_and_type(self) -> str:
        """``PATCH application/merge-patch+json``: how approvals show and store the method."""
        return f"{self.method} {self.media_type}" if self.media_type else self.method

    def fingerprint(self) -> str:
        return _digest(
            b"request", (self.method_and_type, self.path, self.canonical_query, self.body_sha256)
        )


RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
_RESTARTABLE = re.compile(
    r"/apis/apps/v1/namespaces/[^/]+/(deployments|daemonsets|statefulsets)/[^/]+"
)


def client_intent(method: str, path: str, media_type: str, body: bytes | None) -> str:
    """``"restart"`` for exactly what ``kubectl rollout restart`` sends (a patch of the pod
    template's ``restartedAt`` annotation and nothing else), else ``""``."""
    if method != "PATCH" or not body or not _RESTARTABLE.fullmatch(path):
        return ""
    if media_type not in ("application/strategic-merge-patch+json", "application/merge-patch+json"):
        return ""
    try:
        patch = json.loads(body)
    except ValueError:
        return ""
    expected = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: None}}}}}
    if _shape(patch) != _shape(expected):
        return ""
    stamp = patch["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT]
    return "restart" if isinstance(stamp, str) else ""


def _shape(value: object) -> object:
    """The keys of nested objects, without their leaf values."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    return None


def rule_identity(rule: Rule) -> str:
    """The rule's label plus a digest of what it permits.

    Binding approvals to this rather than to the label alone means editing a rule (its verbs,
    resources, namespaces, approvers or approval settings) retires the grants approved under
    the old text: a human approved what the rule said then, not what it says now. The source
    line is left out, so edits elsewhere in the file do not.
    """
    settings = rule.approval
    described = repr(
        (
            rule.effect,
            rule.name,
            rule.verbs,
            rule.api_groups,
            rule.resources,
            rule.namespaces,
            rule.resource_names,
            rule.non_resource_urls,
            rule.approvers,
            None
            if settings is None
            else (
                settings.mode,
                settings.ttl_seconds,
                settings.window_seconds,
                settings.min_approvers,
                settings.direct,
                settings.channel,
            ),
        )
    )
    return f"{rule.label}#{_digest(b'rule', (described,))[:16]}"


def once_match_key(requester_subject: str, fingerprint: str, *, issuer: str, cluster: str) -> str:
    """The key a single-use approval is found by: this requester, this cluster, this request."""
    return "once:" + _digest(b"once", (issuer, requester_subject, cluster, fingerprint))


def grant_match_key(
    requester_subject: str, cluster: str, policy: str, rule: str, *, issuer: str
) -> str:
    """The key a grant is found by: this requester, on this cluster, under this policy rule.

    ``rule`` should be ``rule_identity(rule)``, so an edited rule does not inherit grants.
    """
    return "grant:" + _digest(b"grant", (issuer, requester_subject, cluster, policy, rule))
