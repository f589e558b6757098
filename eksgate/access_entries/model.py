"""Values shared by the desired state, the actual state read from EKS, and the plan."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Tags that mark an entry as eksgate's. Only entries carrying MANAGED_BY_TAG=MANAGED_BY_VALUE
# are ever changed or deleted; the principal may have an entry an administrator made by hand.
MANAGED_BY_TAG = "managed-by"
MANAGED_BY_VALUE = "eksgate"
POLICIES_TAG = "eksgate-policies"
# A space, not a comma: AWS's common tag character set (letters, digits, spaces and + - = . _ :
# / @) has no comma, and policy names never contain spaces.
POLICIES_TAG_SEPARATOR = " "
TAG_VALUE_LIMIT = 256
CLOUDFORMATION_STACK_TAG = "aws:cloudformation:stack-name"


def policy_name(policy_arn: str) -> str:
    """``arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy`` -> ``AmazonEKSViewPolicy``."""
    return policy_arn.rsplit("/", 1)[-1]


@dataclass(frozen=True, order=True)
class AccessScope:
    """Where an access policy applies: the whole cluster, or the named namespaces (globs)."""

    type: str  # "cluster" | "namespace"
    namespaces: tuple[str, ...] = ()

    @classmethod
    def cluster(cls) -> AccessScope:
        return cls("cluster")

    @classmethod
    def of_namespaces(cls, namespaces: Any) -> AccessScope:
        return cls("namespace", tuple(sorted(set(namespaces))))

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> AccessScope:
        """EKS answers ``{"type": "cluster", "namespaces": []}``; both forms compare equal."""
        if data.get("type") == "cluster":
            return cls.cluster()
        return cls.of_namespaces(data.get("namespaces") or ())

    def to_api(self) -> dict[str, Any]:
        """The ``accessScope`` parameter of AssociateAccessPolicy."""
        if self.type == "cluster":
            return {"type": "cluster"}
        return {"type": "namespace", "namespaces": list(self.namespaces)}

    def to_cloudformation(self) -> dict[str, Any]:
        """The ``AccessScope`` property of AWS::EKS::AccessEntry (capitalised, unlike the API)."""
        if self.type == "cluster":
            return {"Type": "cluster"}
        return {"Type": "namespace", "Namespaces": list(self.namespaces)}

    def describe(self) -> str:
        return "cluster" if self.type == "cluster" else f"namespaces [{', '.join(self.namespaces)}]"


@dataclass(frozen=True, order=True)
class Association:
    """One AWS managed access policy associated with an entry, with its scope."""

    policy_arn: str
    scope: AccessScope

    @property
    def policy_name(self) -> str:
        return policy_name(self.policy_arn)


@dataclass(frozen=True)
class DesiredEntry:
    """The access entry a role should have on a cluster, derived from the policies naming it.

    ``warnings`` are things the access policies cannot grant that a rule asks for (Secrets,
    cluster-scoped reads, custom resources): the plan shows them, the entry is still made.
    """

    principal_arn: str
    policies: tuple[str, ...]
    associations: tuple[Association, ...]
    type: str = "STANDARD"
    warnings: tuple[str, ...] = ()

    @property
    def tags(self) -> dict[str, str]:
        return {MANAGED_BY_TAG: MANAGED_BY_VALUE, POLICIES_TAG: policies_tag_value(self.policies)}

    def association(self, policy_arn: str) -> Association | None:
        return next((a for a in self.associations if a.policy_arn == policy_arn), None)


@dataclass(frozen=True)
class ActualEntry:
    """An access entry as EKS reports it. Associations are only read for managed entries."""

    principal_arn: str
    type: str
    tags: Mapping[str, str] = field(default_factory=dict, hash=False)
    associations: tuple[Association, ...] = ()
    access_entry_arn: str = ""

    @property
    def managed(self) -> bool:
        return self.tags.get(MANAGED_BY_TAG) == MANAGED_BY_VALUE

    @property
    def cloudformation_stack(self) -> str:
        """The stack that made this entry (CloudFormation's own tag), or ""."""
        return self.tags.get(CLOUDFORMATION_STACK_TAG, "")

    def association(self, policy_arn: str) -> Association | None:
        return next((a for a in self.associations if a.policy_arn == policy_arn), None)


def policies_tag_value(policies: tuple[str, ...]) -> str:
    """The ``eksgate-policies`` tag: policy names, cut to the 256-character tag limit.

    When they do not fit, as many as fit are kept and ``+N`` says how many were left out;
    the tag is a pointer for people, the policies themselves are the source of truth.
    """
    names = sorted(policies)
    text = POLICIES_TAG_SEPARATOR.join(names)
    if len(text) <= TAG_VALUE_LIMIT:
        return text
    kept: list[str] = []
    for name in names:
        left_out = f"{POLICIES_TAG_SEPARATOR}+{len(names) - len(kept) - 1}"
        if len(POLICIES_TAG_SEPARATOR.join([*kept, name]) + left_out) > TAG_VALUE_LIMIT:
            break
        kept.append(name)
    return POLICIES_TAG_SEPARATOR.join(kept) + f"{POLICIES_TAG_SEPARATOR}+{len(names) - len(kept)}"
