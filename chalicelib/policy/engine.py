"""Decisions: which policy applies to a caller, and what it says about a request.

Deny beats approve beats allow; a request no rule matches is denied.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chalicelib.errors import Forbidden
from chalicelib.identity import Identity
from chalicelib.kube.request import KubeRequest, is_discovery
from chalicelib.policy.compiled import PolicyIndex, PolicySet
from chalicelib.policy.model import Policy, Rule

DISCOVERY_REASON = "discovery is open to every session"


@dataclass(frozen=True)
class Decision:
    effect: str  # allow | approve | deny
    policy: str
    rule: Rule | None
    reason: str

    @property
    def rule_label(self) -> str:
        if self.rule:
            return self.rule.label
        # Without a rule, only the gateway's built-in discovery allowance lets a request pass.
        return "(discovery)" if self.effect == "allow" else "(no rule matched)"


def select_policy(
    identity: Identity, cluster: str, policies: Iterable[Policy] | PolicyIndex
) -> Policy:
    """The one policy for this caller on this cluster; Forbidden if none or several apply.

    Several would make the outcome depend on file order, so we refuse rather than guess.
    ``policies`` is best a ``PolicyIndex`` (``load_policies`` returns a ``PolicySet`` that
    carries one); any other iterable is checked policy by policy.
    """
    if isinstance(policies, PolicySet):
        policies = policies.selection_index
    matching: Sequence[Policy]
    if isinstance(policies, PolicyIndex):
        matching = policies.matching(identity, cluster)
    else:
        matching = [p for p in policies if p.applies_to(identity, cluster)]
    if not matching:
        raise Forbidden(
            f"no policy grants {identity.describe()} access to cluster {cluster!r}",
            details={"cluster": cluster, "subject": identity.subject},
        )
    if len(matching) > 1:
        names = ", ".join(sorted(p.name for p in matching))
        raise Forbidden(
            f"{identity.describe()} matches several policies for cluster {cluster!r} ({names}); "
            "an administrator must make their subjects disjoint",
            details={"cluster": cluster, "policies": names},
        )
    return matching[0]


def evaluate(policy: Policy, request: KubeRequest) -> Decision:
    """What ``policy`` says about ``request``."""
    table = policy.rule_table
    try:
        decision = table.decisions.get(request)
    except TypeError:  # a request value that cannot be hashed is simply not remembered
        return _evaluate(policy, table.winner(request), request)
    if decision is None:
        decision = table.remember(request, _evaluate(policy, table.winner(request), request))
    return decision


def _evaluate(policy: Policy, winner: Rule | None, request: KubeRequest) -> Decision:
    if winner is None:
        return Decision(
            "deny",
            policy.name,
            None,
            f"no rule of policy {policy.name!r} allows {describe_request(request)}",
        )
    verb = {"allow": "allows", "approve": "requires approval for", "deny": "denies"}[winner.effect]
    reason = f"rule {winner.label} of policy {policy.name!r} {verb} {describe_request(request)}"
    if winner.reason:
        reason += f": {winner.reason}"
    return Decision(winner.effect, policy.name, winner, reason)


def decide_request(policy: Policy, request: KubeRequest) -> Decision:
    """What the gateway decides for ``request`` under ``policy``: discovery and ``/version``
    are open to every session (kube's system:discovery), everything else is the policy's."""
    if not request.is_resource_request and is_discovery(request):
        return Decision("allow", policy.name, None, DISCOVERY_REASON)
    return evaluate(policy, request)


def decide(
    identity: Identity, cluster: str, request: KubeRequest, policies: Iterable[Policy]
) -> Decision:
    """The decision for ``identity`` making ``request`` on ``cluster``."""
    try:
        policy = select_policy(identity, cluster, policies)
    except Forbidden as refusal:
        return Decision("deny", "", None, refusal.message)
    return evaluate(policy, request)


def describe_request(request: KubeRequest) -> str:
    """``delete namespaces "shop"`` style text for messages."""
    if not request.is_resource_request:
        return f"{request.verb} {request.path}"
    text = f"{request.verb} {request.resource_with_subresource}"
    if request.api_group:
        text = f"{request.verb} {request.resource_with_subresource}.{request.api_group}"
    if request.name:
        text += f" {request.name!r}"
    if request.namespace and request.resource != "namespaces":
        text += f" in namespace {request.namespace!r}"
    return text
