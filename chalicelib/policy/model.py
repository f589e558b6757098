"""Policy values, built by the loader from validated YAML. Frozen: they cross modules."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from functools import cached_property
from typing import Any

from chalicelib.identity import Identity
from chalicelib.kube.request import KubeRequest
from chalicelib.masking import PATTERN_NAMES, MaskingSettings
from chalicelib.policy.commands import any_command_matches


def glob_match(pattern: str, value: str) -> bool:
    """Case-sensitive shell-style match (``*``, ``?``, ``[...]``); ``*`` also spans ``/``."""
    return fnmatchcase(value, pattern)


def _claim_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int)):
        return str(value)
    return None


def claim_texts(actual: Any) -> list[str]:
    """A token claim's values as policy text; a list-valued claim gives each element."""
    if type(actual) is str:
        return [actual]
    values = actual if isinstance(actual, list) else [actual]
    return [t for t in (_claim_text(v) for v in values) if t is not None]


@dataclass(frozen=True)
class Subject:
    """Who a policy is for: an issuer and claims that must all hold (globs allowed).

    A list in the policy means any of those values; a list-valued claim in the token (such
    as ``groups``) matches if any of its elements does.
    """

    issuer: str
    claims: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)

    def matches(self, identity: Identity) -> bool:
        if not glob_match(self.issuer, identity.issuer):
            return False
        for name, patterns in self.claims.items():
            texts = claim_texts(identity.claims.get(name))
            if not any(glob_match(p, t) for p in patterns for t in texts):
                return False
        return True


@dataclass(frozen=True)
class ApprovalSettings:
    mode: str = "once"  # once: one exact request; grant: a window for the rule
    ttl_seconds: int = 900  # how long a pending request waits for a decision
    window_seconds: int = 900  # grant mode: how long an approved window stays open
    min_approvers: int = 1
    direct: bool = False  # grant mode: may /v1/token issue a direct EKS token
    role: str | None = None  # direct grants: the role the token is for (this rule alone)
    channel: str | None = None


@dataclass(frozen=True)
class Rule:
    index: int
    effect: str
    name: str | None = None
    reason: str = ""
    verbs: tuple[str, ...] = ("*",)
    api_groups: tuple[str, ...] = ("*",)
    resources: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    approvers: tuple[str, ...] = ()
    approval: ApprovalSettings | None = None
    commands: tuple[tuple[str, ...], ...] = ()  # pods/exec: argv patterns (policy/commands.py)
    line: int = 0

    @property
    def label(self) -> str:
        """How messages name this rule: its name, or its position."""
        return self.name or f"rules[{self.index}]"

    def matches(self, request: KubeRequest) -> bool:
        """RBAC's matching rules, plus globs in namespaces and ``resource/*``."""
        if not self.matches_ignoring_scope(request):
            return False
        if not request.is_resource_request:
            return True
        if self.namespaces and not any(glob_match(n, request.namespace) for n in self.namespaces):
            return False
        if self.resource_names and request.name not in self.resource_names:
            return False
        # pods/exec rules may name the commands they cover; no match is no rule.
        return not self.commands or any_command_matches(self.commands, request.command or ())

    def matches_ignoring_scope(self, request: KubeRequest) -> bool:
        """``matches`` without the namespace and resource-name checks."""
        if not ("*" in self.verbs or request.verb in self.verbs):
            return False
        if not request.is_resource_request:
            return any(
                url == request.path or (url.endswith("*") and request.path.startswith(url[:-1]))
                for url in self.non_resource_urls
            )
        if not self.resources:
            return False
        if not ("*" in self.api_groups or request.api_group in self.api_groups):
            return False
        return any(_resource_matches(r, request) for r in self.resources)


def _resource_matches(pattern: str, request: KubeRequest) -> bool:
    combined = request.resource_with_subresource
    if pattern in ("*", combined):
        return True
    if pattern.startswith("*/"):
        return request.subresource == pattern[2:]
    if pattern.endswith("/*"):
        return bool(request.subresource) and request.resource == pattern[:-2]
    return False


@dataclass(frozen=True)
class Policy:
    name: str
    subjects: tuple[Subject, ...]
    clusters: tuple[str, ...]
    role_arn: str
    rules: tuple[Rule, ...]
    description: str = ""
    direct: bool = False
    # Its subjects are workloads (CI jobs, agents), never people: no Slack member can be the
    # requester, so approvers need not be told apart from it by a verified email.
    workload: bool = False
    max_session_seconds: int = 900
    # Every pattern unless the policy narrows them: masking too much beats leaking.
    masking_patterns: tuple[str, ...] = tuple(sorted(PATTERN_NAMES))
    # The families this policy turns off (``except``, or left out of a legacy ``patterns``).
    masking_narrowed: tuple[str, ...] = ()
    masking_unscannable_binary: str = "withhold"
    source: str = ""
    line: int = 0

    def role_rules(self) -> list[tuple[str, tuple[Rule, ...]]]:
        """Each IAM role the policy uses, with the rules it serves.

        The policy's role serves the gateway's rules; a direct-grant rule's own role serves
        that rule alone, so a grant token can do what the approved rule says and no more.
        """
        grants = [r for r in self.rules if r.approval and r.approval.direct and r.approval.role]
        own = tuple(r for r in self.rules if r not in grants)
        return [(self.role_arn, own)] + [
            (r.approval.role, (r,)) for r in grants if r.approval and r.approval.role
        ]

    def applies_to_cluster(self, cluster: str) -> bool:
        return any(glob_match(c, cluster) for c in self.clusters)

    def applies_to(self, identity: Identity, cluster: str) -> bool:
        return any(glob_match(c, cluster) for c in self.clusters) and any(
            s.matches(identity) for s in self.subjects
        )

    @cached_property
    def rule_table(self) -> Any:
        """The rules compiled for evaluation (a ``RuleTable``), built on first use."""
        from chalicelib.policy.compiled import RuleTable

        return RuleTable(self.rules)

    @property
    def masking(self) -> MaskingSettings:
        return MaskingSettings(
            patterns=self.masking_patterns, unscannable_binary=self.masking_unscannable_binary
        )

    def matched_claims(self, identity: Identity) -> dict[str, Any]:
        """The claims the first matching subject checked: what audit records as "why"."""
        for subject in self.subjects:
            if subject.matches(identity):
                return {name: identity.claims.get(name) for name in subject.claims}
        return {}
