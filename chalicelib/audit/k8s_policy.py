"""A Kubernetes audit ``Policy`` (audit.k8s.io/v1): which level each request is logged at.

The same file a cluster's ``--audit-policy-file`` takes, read with kube-apiserver's matching
rules: the first rule that matches a request sets its level; no rule matching means level
None; a rule matches when every list it sets matches (users, userGroups, verbs, resources,
namespaces, nonResourceURLs); rules with resources or namespaces never match a
non-resource request, and rules with nonResourceURLs never match a resource request.
``omitStages`` of the policy and of the matching rule both apply. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

LEVELS = ("None", "Metadata", "Request", "RequestResponse")
STAGES = ("RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
_RULE_FIELDS = frozenset(
    {
        "level",
        "users",
        "userGroups",
        "verbs",
        "resources",
        "namespaces",
        "nonResourceURLs",
        "omitStages",
        "omitManagedFields",
    }
)


class AuditPolicyError(ValueError):
    """The policy file is not a valid audit.k8s.io/v1 Policy; the message says where."""


@dataclass(frozen=True)
class GroupResources:
    group: str  # "" is the core group
    resources: tuple[str, ...]  # "pods", "pods/log", "*/scale", "pods/*", "*"; empty = all
    resource_names: tuple[str, ...]  # empty = any name


@dataclass(frozen=True)
class PolicyRule:
    level: str
    users: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resources: tuple[GroupResources, ...] = ()
    namespaces: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: tuple[str, ...] = ()
    omit_managed_fields: bool | None = None  # None: the policy's default


@dataclass(frozen=True)
class AuditPolicy:
    rules: tuple[PolicyRule, ...]
    omit_stages: tuple[str, ...] = ()
    omit_managed_fields: bool = False


@dataclass(frozen=True)
class Attributes:
    """What a rule is matched against: the user and the resolved request."""

    username: str
    groups: tuple[str, ...]
    verb: str
    is_resource_request: bool
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""


# Without a policy file, every request is logged with its metadata and no bodies.
METADATA_FOR_ALL = AuditPolicy(rules=(PolicyRule(level="Metadata"),))


def level_for(policy: AuditPolicy, attributes: Attributes) -> tuple[str, tuple[str, ...]]:
    """The level of the first rule matching ``attributes`` and the stages to omit.

    ``("None", ...)`` when no rule matches, as kube-apiserver does.
    """
    rule = matching_rule(policy, attributes)
    if rule is None:
        return "None", policy.omit_stages
    return rule.level, tuple(dict.fromkeys(policy.omit_stages + rule.omit_stages))


def matching_rule(policy: AuditPolicy, attributes: Attributes) -> PolicyRule | None:
    """The first rule matching ``attributes``, or None."""
    return next((rule for rule in policy.rules if _matches(rule, attributes)), None)


def omits_managed_fields(policy: AuditPolicy, rule: PolicyRule | None) -> bool:
    """Whether bodies lose ``metadata.managedFields``: the rule's choice, else the policy's."""
    if rule is not None and rule.omit_managed_fields is not None:
        return rule.omit_managed_fields
    return policy.omit_managed_fields


def _matches(rule: PolicyRule, a: Attributes) -> bool:
    if rule.users and a.username not in rule.users:
        return False
    if rule.user_groups and not set(rule.user_groups).intersection(a.groups):
        return False
    if rule.verbs and a.verb not in rule.verbs:
        return False
    if a.is_resource_request:
        if rule.non_resource_urls:
            return False
        if rule.namespaces and a.namespace not in rule.namespaces:
            return False
        return not rule.resources or any(_resource_matches(g, a) for g in rule.resources)
    if rule.resources or rule.namespaces:
        return False
    return not rule.non_resource_urls or any(
        _path_matches(pattern, a.path) for pattern in rule.non_resource_urls
    )


def _resource_matches(group: GroupResources, a: Attributes) -> bool:
    if group.group != a.api_group:
        return False
    if not group.resources:
        return True
    if group.resource_names and a.name not in group.resource_names:
        return False
    combined = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
    for pattern in group.resources:
        if pattern in ("*", combined):
            return True
        # "*/scale" matches scale subresources only. "pods/*" matches pods and all of its
        # subresources: kube-apiserver's checker compares only the part before "/*" with
        # the resource (pkg/audit/policy/checker.go), whatever its doc comment says.
        if a.subresource and pattern == f"*/{a.subresource}":
            return True
        if pattern == f"{a.resource}/*":
            return True
    return False


def _path_matches(pattern: str, path: str) -> bool:
    if pattern.endswith("*"):
        return path.startswith(pattern[:-1])
    return pattern == path


def load_policy(text: str, source: str = "policy") -> AuditPolicy:
    """Read a Policy from YAML or JSON text; AuditPolicyError naming ``source`` and the field."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise AuditPolicyError(f"{source}: not YAML: {exc}") from None
    return parse_policy(document, source)


def parse_policy(document: Any, source: str = "policy") -> AuditPolicy:
    """A Policy from its decoded document; AuditPolicyError naming ``source`` and the field."""
    if not isinstance(document, Mapping):
        raise AuditPolicyError(f"{source}: a Policy must be a mapping")
    if document.get("apiVersion") != "audit.k8s.io/v1" or document.get("kind") != "Policy":
        raise AuditPolicyError(f"{source}: apiVersion must be audit.k8s.io/v1 and kind Policy")
    rules = document.get("rules")
    if not isinstance(rules, list) or not rules:
        raise AuditPolicyError(f"{source}: rules must be a non-empty list")
    omit_managed = document.get("omitManagedFields", False)
    if not isinstance(omit_managed, bool):
        raise AuditPolicyError(f"{source}: omitManagedFields must be true or false")
    return AuditPolicy(
        rules=tuple(_rule(raw, f"{source}: rules[{i}]") for i, raw in enumerate(rules)),
        omit_stages=_stages(document.get("omitStages"), f"{source}: omitStages"),
        omit_managed_fields=omit_managed,
    )


def _rule(raw: Any, where: str) -> PolicyRule:
    if not isinstance(raw, Mapping):
        raise AuditPolicyError(f"{where}: a rule must be a mapping")
    unknown = sorted(set(raw) - _RULE_FIELDS)
    if unknown:
        raise AuditPolicyError(f"{where}: unknown field(s) {', '.join(unknown)}")
    omit_managed = raw.get("omitManagedFields")
    if omit_managed is not None and not isinstance(omit_managed, bool):
        raise AuditPolicyError(f"{where}.omitManagedFields must be true or false")
    level = raw.get("level")
    if level not in LEVELS:
        raise AuditPolicyError(f"{where}.level must be one of {', '.join(LEVELS)}, not {level!r}")
    urls = _strings(raw.get("nonResourceURLs"), f"{where}.nonResourceURLs")
    if urls and (raw.get("resources") or raw.get("namespaces")):
        raise AuditPolicyError(
            f"{where}: nonResourceURLs cannot be combined with resources or namespaces"
        )
    for url in urls:
        if url != "*" and (not url.startswith("/") or "*" in url[:-1]):  # kube's own checks
            raise AuditPolicyError(
                f"{where}.nonResourceURLs: {url!r} must start with / and may end with one *"
            )
    resources = raw.get("resources") or []
    if not isinstance(resources, list):
        raise AuditPolicyError(f"{where}.resources must be a list")
    return PolicyRule(
        level=level,
        users=_strings(raw.get("users"), f"{where}.users"),
        user_groups=_strings(raw.get("userGroups"), f"{where}.userGroups"),
        verbs=_strings(raw.get("verbs"), f"{where}.verbs"),
        resources=tuple(
            _group_resources(r, f"{where}.resources[{i}]") for i, r in enumerate(resources)
        ),
        namespaces=_strings(raw.get("namespaces"), f"{where}.namespaces"),
        non_resource_urls=urls,
        omit_stages=_stages(raw.get("omitStages"), f"{where}.omitStages"),
        omit_managed_fields=omit_managed,
    )


def _group_resources(raw: Any, where: str) -> GroupResources:
    if not isinstance(raw, Mapping):
        raise AuditPolicyError(f"{where} must be a mapping")
    unknown = sorted(set(raw) - {"group", "resources", "resourceNames"})
    if unknown:
        raise AuditPolicyError(f"{where}: unknown field(s) {', '.join(unknown)}")
    group = raw.get("group", "")
    if not isinstance(group, str):
        raise AuditPolicyError(f"{where}.group must be a string")
    return GroupResources(
        group=group,
        resources=_strings(raw.get("resources"), f"{where}.resources"),
        resource_names=_strings(raw.get("resourceNames"), f"{where}.resourceNames"),
    )


def _stages(raw: Any, where: str) -> tuple[str, ...]:
    stages = _strings(raw, where)
    wrong = [s for s in stages if s not in STAGES]
    if wrong:
        raise AuditPolicyError(f"{where}: unknown stage(s) {', '.join(wrong)}")
    return stages


def _strings(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise AuditPolicyError(f"{where} must be a list of strings")
    if not all(isinstance(item, str) for item in raw):
        raise AuditPolicyError(f"{where} must be a list of strings")
    return tuple(raw)
