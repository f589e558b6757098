"""``eksgate policy simulate DIR``: the recorded requests of a window, decided again by DIR.

Prints, per identity, each decision that would change (old effect -> new effect) with counts
and examples. A request the trail shows allowed, or sent to a human, that DIR would deny is
a breaking change: the command then exits 1, so it can gate policy pull requests.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from chalicelib.audit.replay import kubectl_equivalent
from chalicelib.policy import Policy
from eksgate.policy_evidence import Evidence, recorded_identity, replay_decision

EXAMPLES = 3
BREAKING = frozenset({("allow", "deny"), ("approve", "deny")})


@dataclass(frozen=True)
class Change:
    """One recorded request whose decision differs under the candidate policies."""

    subject: str
    old: str
    new: str
    old_rule: str
    new_rule: str
    command: str  # the kubectl equivalent of the request
    session_id: str
    time: str
    reason: str

    @property
    def breaking(self) -> bool:
        return (self.old, self.new) in BREAKING


@dataclass
class Simulation:
    replayed: int = 0
    changes: list[Change] = field(default_factory=list)

    @property
    def breaking(self) -> list[Change]:
        return [c for c in self.changes if c.breaking]


def simulate(decided: Iterable[Evidence], candidate: tuple[Policy, ...]) -> Simulation:
    """Every decided request replayed against ``candidate``; the changed ones collected."""
    result = Simulation()
    for item in decided:
        record = item.record
        result.replayed += 1
        decision = replay_decision(
            recorded_identity(record), record.cluster, item.request, candidate
        )
        if decision.effect == item.effect:
            continue
        result.changes.append(
            Change(
                subject=record.subject or "(unknown)",
                old=item.effect,
                new=decision.effect,
                old_rule=f"{item.policy}/{item.rule}" if item.policy else item.rule,
                new_rule=f"{decision.policy}/{decision.rule_label}"
                if decision.policy
                else decision.rule_label,
                command=kubectl_equivalent(record.request or {}),
                session_id=record.session_id,
                time=record.time,
                reason=decision.reason,
            )
        )
    return result


def render(result: Simulation, since: str, sessions: int) -> list[str]:
    """The report: per identity, per (old -> new, request), a count and examples."""
    return [_printable(line) for line in _report(result, since, sessions)]


def _printable(line: str) -> str:
    # Subjects come from tokens and names from requests: no escape sequence reaches a terminal.
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in line)


def _report(result: Simulation, since: str, sessions: int) -> list[str]:
    lines = [f"replayed {result.replayed} decided requests from {sessions} sessions since {since}"]
    if not result.changes:
        return lines + ["no decision would change"]
    by_subject: dict[str, dict[tuple, list[Change]]] = defaultdict(lambda: defaultdict(list))
    for change in result.changes:
        key = (change.old, change.new, change.command, change.old_rule, change.new_rule)
        by_subject[change.subject][key].append(change)
    for subject in sorted(by_subject):
        groups = by_subject[subject]
        lines.append("")
        lines.append(f"{subject}: {sum(len(g) for g in groups.values())} decisions would change")
        ordered = sorted(groups.items(), key=lambda kv: (not kv[1][0].breaking, -len(kv[1])))
        for (old, new, command, old_rule, new_rule), changes in ordered:
            mark = "BREAKS" if changes[0].breaking else "changes"
            lines.append(
                f"  {mark}: {old} -> {new}  x{len(changes)}  {command}"
                f"  (was {old_rule}, now {new_rule})"
            )
            lines.append(f"    why: {changes[0].reason}")
            for example in changes[:EXAMPLES]:
                lines.append(f"    e.g. session {example.session_id} at {example.time}")
    breaking = len(result.breaking)
    lines.append("")
    lines.append(
        f"{len(result.changes)} decisions would change; {breaking} previously allowed "
        "(or approvable) would be denied"
        if breaking
        else f"{len(result.changes)} decisions would change; none previously allowed is denied"
    )
    return lines
