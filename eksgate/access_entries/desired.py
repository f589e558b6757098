"""The access entries a cluster should have, derived from the policies (pure: no AWS calls).

How a rule maps to an AWS managed access policy:

- every verb is get/list/watch: ``AmazonEKSViewPolicy``. Reads never escalate to a wider
  policy, even for resources View leaves out (Secrets, nodes, RBAC objects, custom resources):
  the plan warns instead. In particular Secrets: the alternatives that read them
  (AmazonEKSEditPolicy, AmazonEKSAdminViewPolicy, AmazonEKSSecretReaderPolicy) would let anyone
  holding the role's credentials, such as a direct-mode token, read Secret values unmasked,
  which is exactly what eksgate promises never happens. An administrator who wants the gateway
  to read Secrets (it masks them) adds a Kubernetes RBAC binding for the role deliberately.
  (Edit and Admin do include Secrets; when a role has them for its writes, the plan says that
  its own credentials, and any direct token for it, can read Secret values there.)
- any other verb on namespaced resources: ``AmazonEKSEditPolicy`` (workloads, configmaps,
  services, pods/exec, pods/attach, pods/portforward for approved direct grants, ...).
- writes to ``roles``/``rolebindings``, or to ``*`` resources in groups that include RBAC:
  ``AmazonEKSAdminPolicy``.
- writes that only ``AmazonEKSClusterAdminPolicy`` could grant (cluster-scoped resources such as
  clusterroles, namespaces or nodes; ``*`` resources without namespaces; non-resource URLs other
  than discovery): refused with ClusterAdminRequired naming the policy and rule. eksgate never
  associates ClusterAdmin.

Each access policy's scope is the union of the namespaces of the rules that called for it, or
the whole cluster when any of those rules names no namespaces.

Deny rules are not expressed: access policies only allow, so a deny (``no-rbac``, ``kube-system``
is off limits) stays the gateway's job. The access entry is a ceiling on what the role can do,
not a copy of the policy.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from chalicelib.policy.model import Policy, Rule, glob_match
from eksgate.access_entries.access_policies import (
    ADMIN_POLICY,
    ALL_VERBS,
    CLUSTER_SCOPED,
    EDIT_POLICY,
    NAMESPACED_RBAC,
    POLICY_ORDER,
    RBAC_GROUP,
    READ_VERBS,
    VIEW_POLICY,
    grants,
)
from eksgate.access_entries.errors import ClusterAdminRequired
from eksgate.access_entries.model import AccessScope, Association, DesiredEntry, policy_name

# Non-resource URLs every authenticated principal may already read (the system:discovery and
# system:public-info-viewer ClusterRoles), so rules on them need no access policy.
_DISCOVERY_URLS = ("/api", "/apis", "/healthz", "/livez", "/readyz", "/version", "/openapi")
_GLOB_CHARS = "*?["

_WILDCARD_GAPS = {
    VIEW_POLICY: "no Secrets, RBAC objects, custom resources, or cluster-scoped resources "
    "other than namespaces",
    EDIT_POLICY: "no RBAC objects, custom resources or cluster-scoped resources",
    ADMIN_POLICY: "no custom resources or cluster-scoped resources",
}


@dataclass(frozen=True)
class _RuleGrant:
    policy_arn: str
    namespaces: tuple[str, ...]  # empty: the whole cluster


def desired_entries(policies: Iterable[Policy], cluster_name: str) -> list[DesiredEntry]:
    """One STANDARD access entry per role ARN of the policies whose ``clusters`` match.

    Policies sharing a role are merged: the entry's associations cover every such policy's
    allow and approve rules. Sorted by principal ARN, associations by policy ARN, namespaces
    alphabetically, so the same policies always give the same result. Raises
    ClusterAdminRequired listing every rule that only AmazonEKSClusterAdminPolicy could honour.
    """
    by_role: dict[str, list[tuple[Policy, tuple[Rule, ...]]]] = defaultdict(list)
    for policy in policies:
        if any(glob_match(pattern, cluster_name) for pattern in policy.clusters):
            # A direct-grant rule's own role gets an entry from that rule alone.
            for role_arn, rules in policy.role_rules():
                by_role[role_arn].append((policy, rules))

    entries: list[DesiredEntry] = []
    problems: list[str] = []
    for role_arn in sorted(by_role):
        served = sorted(by_role[role_arn], key=lambda pr: pr[0].name)
        role_policies = [policy for policy, _ in served]
        scopes: dict[str, list[tuple[str, ...]]] = defaultdict(list)
        granted: list[tuple[Policy, Rule]] = []
        warnings: list[str] = []
        for policy, rules in served:
            for rule in rules:
                if rule.effect == "deny":
                    continue
                needs_cluster_admin = _cluster_admin_reasons(rule)
                if needs_cluster_admin:
                    problems.append(f"{_where(policy, rule)}: {'; '.join(needs_cluster_admin)}")
                    continue
                grant = _grant_for(rule)
                if grant is None:
                    continue
                granted.append((policy, rule))
                if not _grants_any(rule, grant.policy_arn):
                    continue  # nothing of it is grantable: widening a scope would buy nothing
                namespaces, widened = _eks_namespaces(grant.namespaces)
                scopes[grant.policy_arn].append(namespaces)
                warnings.extend(f"{_where(policy, rule)}: {w}" for w in widened)
        associations = tuple(
            sorted(
                Association(policy_arn, _merged_scope(namespace_lists))
                for policy_arn, namespace_lists in scopes.items()
            )
        )
        # Coverage is judged against the whole entry: a read rule View cannot serve may well be
        # served by an Edit association of another rule in the same namespaces.
        for policy, rule in granted:
            warnings.extend(
                f"{_where(policy, rule)}: {w}" for w in _coverage_warnings(rule, associations)
            )
        warnings.extend(_secret_exposure_warnings(role_arn, role_policies, associations))
        entries.append(
            DesiredEntry(
                principal_arn=role_arn,
                policies=tuple(p.name for p in role_policies),
                associations=associations,
                warnings=tuple(warnings),
            )
        )
    if problems:
        raise ClusterAdminRequired(problems)
    return entries


def _where(policy: Policy, rule: Rule) -> str:
    place = f" ({policy.source}:{rule.line})" if policy.source and rule.line else ""
    return f"policy {policy.name!r} rule {rule.label}{place}"


def _writes(rule: Rule) -> bool:
    return "*" in rule.verbs or bool(set(rule.verbs) - READ_VERBS)


def _base(resource: str) -> str:
    return resource.split("/", 1)[0]


def _rbac_group_possible(rule: Rule) -> bool:
    return "*" in rule.api_groups or RBAC_GROUP in rule.api_groups


def _cluster_admin_reasons(rule: Rule) -> list[str]:
    """Why only ClusterAdmin could grant what ``rule`` allows; empty when another policy can."""
    if rule.non_resource_urls:
        outside = [u for u in rule.non_resource_urls if not _is_discovery_url(u)]
        if _writes(rule):
            return [
                (
                    f"{', '.join(rule.verbs)} on non-resource URLs "
                    f"{', '.join(rule.non_resource_urls)}"
                )
            ]
        if outside:
            return [f"reads non-resource URLs beyond discovery: {', '.join(outside)}"]
        return []
    if not _writes(rule):
        return []
    reasons = []
    cluster_scoped = sorted({r for r in rule.resources if _base(r) in CLUSTER_SCOPED})
    if cluster_scoped:
        reasons.append(f"writes to cluster-scoped resources {', '.join(cluster_scoped)}")
    if not rule.namespaces and any(_base(r) == "*" for r in rule.resources):
        reasons.append(
            "writes to '*' resources with no namespaces (that includes every "
            "cluster-scoped resource)"
        )
    return reasons


def _is_discovery_url(url: str) -> bool:
    stem = url.rstrip("*").rstrip("/")
    return any(stem == u or stem.startswith(u + "/") for u in _DISCOVERY_URLS)


def _grant_for(rule: Rule) -> _RuleGrant | None:
    """The narrowest access policy for ``rule``; None when no policy is needed (discovery)."""
    if rule.non_resource_urls:
        return None
    if not _writes(rule):
        return _RuleGrant(VIEW_POLICY, rule.namespaces)
    chosen = EDIT_POLICY
    for resource in rule.resources:
        base = _base(resource)
        if (base in NAMESPACED_RBAC or base == "*") and _rbac_group_possible(rule):
            chosen = max(chosen, ADMIN_POLICY, key=POLICY_ORDER.index)
    return _RuleGrant(chosen, rule.namespaces)


def _rule_verbs(rule: Rule) -> list[str]:
    return sorted(ALL_VERBS) if "*" in rule.verbs else list(rule.verbs)


def _grants_any(rule: Rule, policy_arn: str) -> bool:
    """Does ``policy_arn`` grant any of ``rule`` (wildcard resources are assumed to)?"""
    return any(
        "*" in resource
        or any(grants(policy_arn, rule.api_groups, resource, verb) for verb in _rule_verbs(rule))
        for resource in rule.resources
    )


def _eks_namespaces(patterns: tuple[str, ...]) -> tuple[tuple[str, ...], list[str]]:
    """Policy namespace globs as EKS takes them, and warnings for the ones that had to widen.

    EKS access scopes accept exact names and a trailing ``*`` (``dev-*``). Other globs
    (``team-?``, ``[ab]-prod``) widen to the prefix before their first glob character plus
    ``*``: a wider ceiling is safe (the gateway still checks the exact glob), a narrower one
    would break requests the policy allows.
    """
    namespaces: list[str] = []
    warnings: list[str] = []
    for pattern in patterns:
        first = min((pattern.index(c) for c in _GLOB_CHARS if c in pattern), default=-1)
        if first == -1 or (first == len(pattern) - 1 and pattern.endswith("*")):
            namespaces.append(pattern)
            continue
        widened = pattern[:first] + "*"
        namespaces.append(widened)
        warnings.append(
            f"namespace glob {pattern!r} is scoped as {widened!r} in EKS (access "
            "scopes only take a trailing '*'); the gateway still enforces the glob"
        )
    return tuple(namespaces), warnings


def _merged_scope(namespace_lists: list[tuple[str, ...]]) -> AccessScope:
    if any(not namespaces for namespaces in namespace_lists):
        return AccessScope.cluster()
    return AccessScope.of_namespaces(n for namespaces in namespace_lists for n in namespaces)


def _scope_covers(scope: AccessScope, rule: Rule) -> bool:
    """Does ``scope`` reach every namespace ``rule`` may act in?"""
    if scope.type == "cluster":
        return True
    if not rule.namespaces:
        return False
    namespaces, _ = _eks_namespaces(rule.namespaces)
    return all(any(glob_match(s, n) for s in scope.namespaces) for n in namespaces)


def _coverage_warnings(rule: Rule, associations: tuple[Association, ...]) -> list[str]:
    """What ``rule`` asks for that the entry's access policies do not grant where it applies.

    The cluster refuses those requests to the role even when the gateway allows them.
    """
    covering = [a.policy_arn for a in associations if _scope_covers(a.scope, rule)]
    names = ", ".join(policy_name(p) for p in covering) or "no access policy"
    verbs = _rule_verbs(rule)
    warnings: list[str] = []
    missing: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for resource in rule.resources:
        if resource == "*":
            if covering:
                widest = max(covering, key=POLICY_ORDER.index)
                warnings.append(
                    f"resources '*': {policy_name(widest)} grants the common built-in resources "
                    f"only ({_WILDCARD_GAPS[widest]}); requests for the rest are refused by the "
                    "cluster unless an administrator grants them with RBAC"
                )
            continue
        if "*" in resource:
            continue  # pods/*, */status: too open-ended to check against a table
        not_granted = tuple(
            v for v in verbs if not any(grants(p, rule.api_groups, resource, v) for p in covering)
        )
        if resource == "secrets" and not_granted:
            warnings.append(
                f"reads secrets, but {names} does not include Secrets: the gateway cannot read "
                "Secrets with this role unless an administrator adds an RBAC binding for it "
                "(eksgate does not widen a read-only rule to a policy that reads Secrets, so "
                "the role's own credentials cannot see Secret values)"
            )
            continue
        if not_granted:
            missing[not_granted].append(resource)
    for not_granted, resources in missing.items():
        warnings.append(
            f"{names} does not grant {', '.join(not_granted)} on "
            f"{', '.join(resources)}; the cluster refuses these to the role unless "
            "an administrator grants them with Kubernetes RBAC"
        )
    return warnings


def _secret_exposure_warnings(
    role_arn: str, policies: list[Policy], associations: tuple[Association, ...]
) -> list[str]:
    """Edit and Admin include reading and writing Secrets: say so, louder for direct tokens.

    The gateway masks Secret data, but these are the role's own permissions: a direct-mode
    token, or anyone holding the role's credentials, gets them unmasked.
    """
    wide = [a for a in associations if a.policy_arn in (EDIT_POLICY, ADMIN_POLICY)]
    if not wide:
        return []
    where = "; ".join(f"{a.policy_name} on {a.scope.describe()}" for a in wide)
    text = (
        f"role {role_arn}: reading and writing Secrets comes with {where}, so the role's "
        "own credentials can read Secret values there without the gateway's masking"
    )
    direct = [
        p.name
        for p in policies
        if p.direct or any(r.approval and r.approval.direct for r in p.rules)
    ]
    if direct:
        text += (
            f"; direct EKS tokens for this role ({'policy' if len(direct) == 1 else 'policies'}"
            f" {', '.join(direct)}) carry all of it: consider a separate, narrower role for "
            "direct access"
        )
    return [text]
