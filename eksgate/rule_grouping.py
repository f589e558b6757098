"""The smallest rules that cover a set of observed requests. Pure.

Each observed request starts as a rule of its own (one verb, group, resource, namespace and,
where names are stable, one name). Two rules are merged only when they differ in exactly one
dimension: the union along that dimension then matches exactly what the two matched, so the
result allows nothing that was not observed (beyond dropping unstable names).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from chalicelib.kube.request import KubeRequest

# Names kube generates (pods of a ReplicaSet, ReplicaSets of a Deployment, Jobs of a CronJob)
# end in characters of its random alphabet (k8s.io/apimachinery/pkg/util/rand): no vowels,
# no 0, 1 or 3. Such names change with every rollout, so a rule naming them goes stale.
_GENERATED_SUFFIX = re.compile(r"-[bcdfghjklmnpqrstvwxz2456789]{5,10}$")
MAX_STABLE_NAMES = 5
# Merge order: verbs first (get+list+watch of one thing), then names, resources, namespaces.
_DIMENSIONS = ("verbs", "names", "resources", "namespaces", "api_groups", "urls", "commands")


@dataclass(frozen=True)
class Observed:
    """One decided request to cover: its effect and (for approvals) the rule it came from."""

    request: KubeRequest
    effect: str  # allow | approve
    origin: str = ""  # the deciding rule's label; approvals keep their approvers from it


@dataclass(frozen=True)
class RuleShape:
    """A rule as sets; ``None`` namespaces or names mean "not restricted"."""

    effect: str
    origin: str
    verbs: frozenset[str]
    api_groups: frozenset[str] = frozenset()
    resources: frozenset[str] = frozenset()
    namespaces: frozenset[str] | None = None
    names: frozenset[str] | None = None
    urls: frozenset[str] = frozenset()
    # pods/exec: the argvs run (each a command pattern matching itself); None: not an exec.
    commands: frozenset[tuple[str, ...]] | None = None
    uses: Counter[str] = field(default_factory=Counter, compare=False, hash=False)

    @property
    def count(self) -> int:
        return sum(self.uses.values())

    def fixed(self, dimension: str) -> tuple:
        """Everything but ``dimension``: rules equal here merge along ``dimension``."""
        return tuple(
            getattr(self, name) for name in ("effect", "origin", *_DIMENSIONS) if name != dimension
        )


def stable_names(names: Iterable[str]) -> bool:
    """Whether naming these objects in a rule stays right: few, and none kube-generated."""
    distinct = set(names)
    return 0 < len(distinct) <= MAX_STABLE_NAMES and not any(
        _GENERATED_SUFFIX.search(n) for n in distinct
    )


def _use(request: KubeRequest) -> str:
    if not request.is_resource_request:
        return f"{request.verb} {request.path}"
    where = f" -n {request.namespace}" if request.namespace else ""
    name = f"/{request.name}" if request.name else ""
    return f"{request.verb} {request.resource_with_subresource}{name}{where}"


def _named_verbs(observed: list[Observed]) -> dict[tuple, frozenset[str] | None]:
    """Per (effect, origin, group, resource, namespace, verb): its names, if stable."""
    names: dict[tuple, list[str]] = {}
    for item in observed:
        r = item.request
        key = (item.effect, item.origin, r.api_group, r.resource_with_subresource, r.namespace)
        names.setdefault(key + (r.verb,), []).append(r.name)
    result: dict[tuple, frozenset[str] | None] = {}
    for key, seen in names.items():
        named = all(seen) and stable_names(seen)
        result[key] = frozenset(seen) if named else None
    return result


def _cells(observed: list[Observed]) -> list[RuleShape]:
    names = _named_verbs([o for o in observed if o.request.is_resource_request])
    cells: dict[RuleShape, RuleShape] = {}
    for item in observed:
        r = item.request
        origin = item.origin if item.effect == "approve" else ""
        if r.is_resource_request:
            key = (item.effect, item.origin, r.api_group, r.resource_with_subresource)
            cell = RuleShape(
                item.effect,
                origin,
                frozenset({r.verb}),
                frozenset({r.api_group}),
                frozenset({r.resource_with_subresource}),
                frozenset({r.namespace}) if r.namespace else None,
                names[key + (r.namespace, r.verb)],
                # An exec is allowed for the command it ran, never for any command.
                commands=frozenset({r.command}) if r.command else None,
            )
        else:
            cell = RuleShape(item.effect, origin, frozenset({r.verb}), urls=frozenset({r.path}))
        cells.setdefault(cell, cell).uses[_use(r)] += 1
    return list(cells.values())


def _merge_along(rules: list[RuleShape], dimension: str) -> list[RuleShape]:
    groups: dict[tuple, list[RuleShape]] = {}
    for rule in rules:
        if getattr(rule, dimension) is None:
            groups[("unmergeable", id(rule))] = [rule]  # "all" does not merge with a list
            continue
        groups.setdefault(rule.fixed(dimension), []).append(rule)
    merged = []
    for members in groups.values():
        if len(members) == 1:
            merged.append(members[0])
            continue
        union = frozenset().union(*(getattr(m, dimension) for m in members))
        uses: Counter[str] = Counter()
        for member in members:
            uses.update(member.uses)
        merged.append(replace(members[0], **{dimension: union, "uses": uses}))  # type: ignore[arg-type]
    return merged


def _within(inner: frozenset[Any] | None, outer: frozenset[Any] | None) -> bool:
    return outer is None or (inner is not None and inner <= outer)


def covers(outer: RuleShape, inner: RuleShape) -> bool:
    """Whether ``outer`` matches every request ``inner`` matches (same effect and origin)."""
    return (
        (outer.effect, outer.origin) == (inner.effect, inner.origin)
        and inner.verbs <= outer.verbs
        and inner.api_groups <= outer.api_groups
        and inner.resources <= outer.resources
        and inner.urls <= outer.urls
        and _within(inner.namespaces, outer.namespaces)
        and _within(inner.names, outer.names)
        and _within(inner.commands, outer.commands)
    )


def _drop_covered(rules: list[RuleShape]) -> list[RuleShape]:
    kept: list[RuleShape] = []
    # Broadest first, so a rule is folded into one that stays.
    for rule in sorted(rules, key=lambda r: (r.namespaces is not None, r.names is not None)):
        outer = next((k for k in kept if covers(k, rule)), None)
        if outer is None:
            kept.append(rule)
        else:
            outer.uses.update(rule.uses)
    return kept


def smallest_rules(observed: Iterable[Observed]) -> list[RuleShape]:
    """Rules that match every observed request and, names aside, nothing else.

    Most used first; ties in a stable order so the same evidence gives the same policy.
    """
    rules = _cells(list(observed))
    while True:
        before = len(rules)
        for dimension in _DIMENSIONS:
            rules = _merge_along(rules, dimension)
        if len(rules) == before:
            break
    rules = _drop_covered(rules)
    return sorted(rules, key=lambda r: (r.effect != "allow", -r.count, sorted(r.uses)))
