"""Policies compiled for the request path: an index that finds a caller's policy, and per-policy
rule tables that find the winning rule, without walking every policy and every rule.

Both give exactly the answers of the plain definitions (``Policy.applies_to``,
``Rule.matches`` and deny-beats-approve-beats-allow); they only skip what cannot match. The
unit tests compare them with the plain definitions on generated policies.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from fnmatch import translate
from functools import cached_property
from typing import TYPE_CHECKING, Any

from chalicelib.policy.commands import any_command_matches
from chalicelib.policy.model import Policy, Rule, Subject, claim_texts

if TYPE_CHECKING:  # the model module names where these live; this one only needs the types
    from chalicelib.policy.model import Identity, KubeRequest

_GLOB_CHARS = frozenset("*?[")
# Memo tables are bounded so a caller inventing names cannot grow a Lambda's memory; past the
# bound a table is emptied and refilled (answers never depend on what is cached).
MEMO_LIMIT = 4096
PRECEDENCE = {"deny": 0, "approve": 1, "allow": 2}


def is_literal(pattern: str) -> bool:
    return not (_GLOB_CHARS & set(pattern))


def glob_set_matcher(patterns: Iterable[str]) -> Callable[[str], bool]:
    """``any(glob_match(p, value) for p in patterns)`` as one set lookup and at most one regex."""
    patterns = tuple(patterns)
    literals = frozenset(p for p in patterns if is_literal(p))
    globs = [p for p in patterns if not is_literal(p)]
    if not globs:
        return literals.__contains__
    regex = re.compile("|".join(f"(?:{translate(g)})" for g in globs))
    return lambda value: value in literals or regex.match(value) is not None


def _remember(memo: dict, key: Any, value: Any) -> Any:
    if len(memo) >= MEMO_LIMIT:
        memo.clear()
    memo[key] = value
    return value


class CompiledSubject:
    """``Subject.matches`` with its globs compiled once."""

    def __init__(self, subject: Subject) -> None:
        self.subject = subject
        self.issuer = glob_set_matcher([subject.issuer])
        self.claims = [(name, glob_set_matcher(ps)) for name, ps in subject.claims.items()]

    def matches(self, identity: Identity) -> bool:
        if not self.issuer(identity.issuer):
            return False
        claims = identity.claims
        for name, match in self.claims:
            if not any(match(t) for t in claim_texts(claims.get(name))):
                return False
        return True


def literal_prefix(pattern: str) -> str:
    """The part of a glob before its first wildcard (all of it for a literal)."""
    for i, char in enumerate(pattern):
        if char in _GLOB_CHARS:
            return pattern[:i]
    return pattern


Entry = tuple[int, CompiledSubject]


class _ClaimKeys:
    """Subjects keyed by one claim: exact values, and literal prefixes of globs."""

    def __init__(self) -> None:
        self.exact: dict[str, list[Entry]] = {}
        self.prefixes: dict[str, list[Entry]] = {}
        self.lengths: set[int] = set()

    def add(self, pattern: str, entry: Entry) -> None:
        if is_literal(pattern):
            self.exact.setdefault(pattern, []).append(entry)
        else:
            prefix = literal_prefix(pattern)
            self.prefixes.setdefault(prefix, []).append(entry)
            self.lengths.add(len(prefix))

    def lookup(self, text: str) -> list[Entry]:
        found = list(self.exact.get(text, ()))
        for length in self.lengths:
            found += self.prefixes.get(text[:length], ())
        return found


class PolicyIndex:
    """Finds the policies that apply to a caller on a cluster.

    Subjects with a literal issuer are keyed by (issuer, claim name, claim value or the literal
    start of a glob), using their most selective claim; the rest are checked one by one. Every
    candidate the keys turn up is still checked in full, so the index only skips subjects
    that cannot match.
    """

    def __init__(self, policies: Iterable[Policy]) -> None:
        self.policies = tuple(policies)
        self._keys: dict[tuple[str, str], _ClaimKeys] = {}
        self._claims_by_issuer: dict[str, list[str]] = {}
        self._by_issuer: dict[str, list[Entry]] = {}
        self._scanned: list[Entry] = []
        self._clusters = [glob_set_matcher(p.clusters) for p in self.policies]
        self._cluster_memo: dict[str, frozenset[int]] = {}
        # Which policies apply depends only on issuer, cluster and these claims' values.
        self._claim_names = tuple(
            sorted({n for p in self.policies for s in p.subjects for n in s.claims})
        )
        self._memo: dict[tuple, tuple[Policy, ...]] = {}
        # How many subjects share each key: a subject is keyed by its rarest claim.
        self._sharing: dict[tuple[str, str, str], int] = {}
        for policy in self.policies:
            for subject in policy.subjects:
                for name, patterns in subject.claims.items():
                    for prefix in {literal_prefix(p) for p in patterns}:
                        key = (subject.issuer, name, prefix)
                        self._sharing[key] = self._sharing.get(key, 0) + 1
        for position, policy in enumerate(self.policies):
            for subject in policy.subjects:
                self._add((position, CompiledSubject(subject)))

    def _key_claim(self, subject: Subject) -> str | None:
        keyable = [
            name
            for name, patterns in sorted(subject.claims.items())
            if all(literal_prefix(p) for p in patterns)
        ]
        if not keyable:
            return None
        return min(
            keyable,
            key=lambda n: max(
                self._sharing[(subject.issuer, n, literal_prefix(p))] for p in subject.claims[n]
            ),
        )

    def _add(self, entry: Entry) -> None:
        subject = entry[1].subject
        if not is_literal(subject.issuer):
            self._scanned.append(entry)
            return
        name = self._key_claim(subject)
        if name is None:
            self._by_issuer.setdefault(subject.issuer, []).append(entry)
            return
        names = self._claims_by_issuer.setdefault(subject.issuer, [])
        if name not in names:
            names.append(name)
        keys = self._keys.setdefault((subject.issuer, name), _ClaimKeys())
        for pattern in set(subject.claims[name]):
            keys.add(pattern, entry)

    def _on_cluster(self, cluster: str) -> frozenset[int]:
        found = self._cluster_memo.get(cluster)
        if found is None:
            found = frozenset(i for i, applies in enumerate(self._clusters) if applies(cluster))
            _remember(self._cluster_memo, cluster, found)
        return found

    def _candidates(self, identity: Identity) -> list[Entry]:
        issuer = identity.issuer
        candidates = self._scanned + self._by_issuer.get(issuer, [])
        for name in self._claims_by_issuer.get(issuer, ()):
            keys = self._keys[(issuer, name)]
            for text in claim_texts(identity.claims.get(name)):
                candidates += keys.lookup(text)
        return candidates

    def matching(self, identity: Identity, cluster: str) -> tuple[Policy, ...]:
        """Every policy that applies, in load order (as ``Policy.applies_to`` would say)."""
        claims = identity.claims
        key: tuple = (identity.issuer, cluster)
        for name in self._claim_names:
            value = claims.get(name)
            key += ((value,) if type(value) is str else tuple(claim_texts(value)),)
        found = self._memo.get(key)
        if found is None:
            found = _remember(self._memo, key, tuple(self._matching(identity, cluster)))
        return found

    def _matching(self, identity: Identity, cluster: str) -> list[Policy]:
        on_cluster = self._on_cluster(cluster)
        if not on_cluster:
            return []
        hits = {
            position
            for position, subject in self._candidates(identity)
            if position in on_cluster and subject.matches(identity)
        }
        return [self.policies[i] for i in sorted(hits)]


class PolicySet(tuple[Policy, ...]):
    """The loaded policies, a tuple, with their selection index built on first use."""

    @cached_property
    def selection_index(self) -> PolicyIndex:
        return PolicyIndex(self)


class RuleTable:
    """One policy's rules, ordered by precedence, with the candidates for each kind of request
    remembered: the first candidate that also matches namespace and name wins."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.ordered = tuple(sorted(rules, key=lambda r: (PRECEDENCE[r.effect], r.index)))
        self._namespaces = {
            r.index: glob_set_matcher(r.namespaces) for r in self.ordered if r.namespaces
        }
        self._candidates: dict[tuple[str, str, str, str], tuple[Rule, ...]] = {}
        self._non_resource: dict[tuple[str, str], Rule | None] = {}
        # Decisions by request: a decision depends only on the policy and the request.
        self.decisions: dict[KubeRequest, Any] = {}

    def remember(self, request: KubeRequest, decision: Any) -> Any:
        return _remember(self.decisions, request, decision)

    def winner(self, request: KubeRequest) -> Rule | None:
        """The rule that decides ``request``: the highest-precedence one that matches."""
        if not request.is_resource_request:
            key = (request.verb, request.path)
            if key in self._non_resource:
                return self._non_resource[key]
            found = next((r for r in self.ordered if r.matches(request)), None)
            return _remember(self._non_resource, key, found)
        kind = (request.verb, request.api_group, request.resource, request.subresource)
        candidates = self._candidates.get(kind)
        if candidates is None:
            # Verb, group and resource depend only on ``kind``; namespace and name are checked
            # per request below.
            candidates = tuple(r for r in self.ordered if r.matches_ignoring_scope(request))
            _remember(self._candidates, kind, candidates)
        for rule in candidates:
            if rule.namespaces and not self._namespaces[rule.index](request.namespace):
                continue
            if rule.resource_names and request.name not in rule.resource_names:
                continue
            if rule.commands and not any_command_matches(rule.commands, request.command or ()):
                continue  # a pods/exec rule covers only the commands it names
            return rule
        return None
