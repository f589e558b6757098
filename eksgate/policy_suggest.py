"""``eksgate policy suggest``: the smallest policy the audit trail shows is needed.

From the decided requests of a window: rules that allow what was allowed and send to a human
what was approved (never turning an approval into an allow), the current policy's deny rules
(guardrails narrow and keep their reasons), and, as comments, how often each rule was used,
the current rules nobody used, and the requests refused again and again.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from chalicelib.kube.request import KubeRequest
from chalicelib.policy import Policy, PolicyError, load_policies
from eksgate.api_client import CliError
from eksgate.policy_evidence import Evidence, evidence
from eksgate.rule_grouping import Observed, RuleShape, smallest_rules

MIN_REFUSALS = 2
_POLICY_KEYS = ("name", "description", "subjects", "clusters", "role", "direct", "max_session")


@dataclass(frozen=True)
class Suggestion:
    policy: Policy
    raw: dict[str, Any]  # the current policy's YAML document
    used: list[Evidence]  # decided requests of this policy in the window
    since: str
    who: str


def raw_policy(policy: Policy) -> dict[str, Any]:
    """The YAML document ``policy`` was loaded from (for fields the model does not keep)."""
    for document in yaml.safe_load_all(Path(policy.source).read_text()):
        if isinstance(document, dict) and document.get("name") == policy.name:
            return document
    raise CliError(f"policy {policy.name!r} is no longer in {policy.source}")


def _raw_rule(raw: dict[str, Any], label: str) -> dict[str, Any] | None:
    for index, rule in enumerate(raw.get("rules") or []):
        if isinstance(rule, dict) and (rule.get("name") or f"rules[{index}]") == label:
            return rule
    return None


def _flow(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, default_flow_style=None, sort_keys=False, width=100)


def _rule_yaml(rule: dict[str, Any], comments: list[str]) -> list[str]:
    body = _flow([rule]).rstrip("\n").splitlines()  # type: ignore[arg-type]
    return [f"  # {c}" for c in comments] + [f"  {line}" for line in body]


def _slug(text: str) -> str:
    cleaned = "".join(c if c.isalnum() else "-" for c in text.lower())
    return "-".join(p for p in cleaned.split("-") if p)[:48] or "rule"


def shape_to_rule(shape: RuleShape, origin: dict[str, Any] | None) -> dict[str, Any]:
    """The policy YAML mapping of a rule shape; approvals take their settings from origin."""
    rule: dict[str, Any] = {"effect": shape.effect}
    if shape.urls:
        rule["verbs"] = sorted(shape.verbs)
        rule["nonResourceURLs"] = sorted(shape.urls)
    else:
        rule["verbs"] = sorted(shape.verbs)
        rule["apiGroups"] = sorted(shape.api_groups)
        rule["resources"] = sorted(shape.resources)
        if shape.namespaces is not None:
            rule["namespaces"] = sorted(shape.namespaces)
        if shape.names is not None:
            rule["resourceNames"] = sorted(shape.names)
        if shape.commands is not None:
            rule["commands"] = [list(argv) for argv in sorted(shape.commands)]
    if shape.effect == "approve" and origin:
        for key in ("reason", "approvers", "approval"):
            if key in origin:
                rule[key] = origin[key]
    return rule


def _rule_name(shape: RuleShape, taken: set[str]) -> str:
    what = "-".join(sorted(shape.urls or shape.resources)).replace("/", "-")
    where = "-".join(sorted(shape.namespaces or [])) or ("any" if not shape.urls else "")
    base = _slug(f"{shape.effect} {what} {where}")
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    taken.add(name)
    return name


def _uses_comment(shape: RuleShape) -> str:
    top = ", ".join(f"{use} x{n}" for use, n in shape.uses.most_common(4))
    more = len(shape.uses) - 4
    times = "once" if shape.count == 1 else f"{shape.count} times"
    return f"used {times}: {top}" + (f", ... ({more} more)" if more > 0 else "")


def refused_repeatedly(used: Iterable[Evidence], minimum: int = MIN_REFUSALS) -> list[tuple]:
    """(count, request text, rule) of denied requests seen at least ``minimum`` times."""
    counts: Counter[tuple[str, str]] = Counter()
    for item in used:
        if item.effect == "deny":
            r = item.request
            text = f"{r.verb} {r.resource_with_subresource or r.path}" + (
                f"/{r.name}" if r.name else ""
            )
            text += f" -n {r.namespace}" if r.namespace and r.resource != "namespaces" else ""
            counts[(text, item.rule or "(no rule matched)")] += 1
    return [(n, text, rule) for (text, rule), n in counts.most_common() if n >= minimum]


def _observed(used: list[Evidence]) -> tuple[list[Evidence], list[Observed], list[Observed]]:
    """(went through, to cover, naming wildcards) among the decided requests."""
    forwarded = [e for e in used if e.forwarded and e.effect in ("allow", "approve")]
    # Discovery is open to every session: it needs no rule (and the gateway names none).
    ruled = [Observed(e.request, e.effect, e.rule) for e in forwarded if e.rule != "(discovery)"]
    ruled = [o for o in ruled if o.origin]
    # '*', '?' and '[' are wildcards in rules, never parts of real Kubernetes names: a request
    # naming them literally (/api/v1/namespaces/*/pods) must not become a wildcard rule.
    wild = [o for o in ruled if not literal(o.request)]
    return forwarded, [o for o in ruled if literal(o.request)], wild


def _suggested_rules(shapes: list[RuleShape], raw: dict[str, Any], taken: set[str]) -> list[str]:
    lines = []
    for shape in shapes:
        origin = _raw_rule(raw, shape.origin) if shape.effect == "approve" else None
        if shape.effect == "approve" and origin is None:
            lines.append(
                f"  # not suggested: approvals by rule {shape.origin}, no longer in "
                f"the policy ({_uses_comment(shape)})"
            )
            continue
        rule = {"name": _rule_name(shape, taken), **shape_to_rule(shape, origin)}
        note = [f"kept as an approval, like {shape.origin}"] if shape.effect == "approve" else []
        lines += _rule_yaml(rule, [_uses_comment(shape), *note])
    return lines


def _kept_rules(policy: Policy, raw: dict[str, Any], fired: Counter, taken: set[str]) -> list[str]:
    """The current policy's guardrails (deny rules) and its direct grants that were used."""
    lines = []
    for current in policy.rules:
        grant = current.effect == "approve" and current.approval and current.approval.direct
        if current.effect != "deny" and not (grant and fired[current.label]):
            continue
        source = dict(_raw_rule(raw, current.label) or {})
        if current.effect == "deny":
            source.setdefault("name", _unused_name("guardrail", taken))
            why = (
                "kept from the current policy (a guardrail): "
                f"refused {fired[current.label]} requests"
            )
        else:
            why = f"kept: a direct grant, used {fired[current.label]} times outside the gateway"
        taken.add(str(source.get("name", "")))
        lines += _rule_yaml(source, [why])
    return lines


_NOTHING_USED = {
    "name": "nothing-was-used",
    "effect": "deny",
    "reason": "nothing was allowed in the window",
    "verbs": ["*"],
    "resources": ["*"],
}


def render(suggestion: Suggestion) -> str:
    """The suggested policy as YAML, with the evidence in comments. Lint accepts it."""
    policy, raw, used = suggestion.policy, suggestion.raw, suggestion.used
    forwarded, observed, wild = _observed(used)
    fired = Counter(e.rule for e in used)
    discovery = sum(e.rule == "(discovery)" for e in forwarded)
    lines = [
        f"# Suggested by `eksgate policy suggest` from the audit trail since {suggestion.since}",
        (
            f"# ({suggestion.who}): {len(forwarded)} requests went through "
            f"({discovery} of them discovery, open to every session), "
            f"{sum(e.effect == 'deny' for e in used)} were refused."
        ),
        f"# Current policy: {policy.name} ({_shown(policy.source)}). Review before replacing it.",
    ]
    lines += _flow({k: raw[k] for k in _POLICY_KEYS if k in raw}).rstrip("\n").splitlines()
    lines.append("rules:")
    taken: set[str] = set()
    rules = _suggested_rules(smallest_rules(observed), raw, taken)
    rules += _kept_rules(policy, raw, fired, taken)
    if not any(line.startswith("  - ") for line in rules):
        rules += _rule_yaml(_NOTHING_USED, ["nothing went through in the window: nothing allowed"])
    lines += rules
    if wild:
        lines.append(
            f"  # not suggested: {len(wild)} requests naming a wildcard character literally"
        )
    if "masking" in raw:
        lines += _flow({"masking": raw["masking"]}).rstrip("\n").splitlines()
    unused = [r for r in policy.rules if not fired[r.label]]
    if unused:
        lines.append("# Rules of the current policy not used in the window:")
        lines += [f"#   {r.label} ({r.effect}, {_shown(policy.source)}:{r.line})" for r in unused]
    refused = refused_repeatedly(used)
    if refused:
        lines.append("# Refused repeatedly (what the agent keeps trying; not granted above):")
        lines += [f"#   {n} x {text}  (rule {rule})" for n, text, rule in refused]
    return "\n".join(_printable(line) for line in lines) + "\n"


def literal(request: KubeRequest) -> bool:
    """Whether no part a rule would name holds a wildcard character."""
    parts: tuple[str, ...] = (
        (request.api_group, request.resource, request.subresource, request.namespace)
        if request.is_resource_request
        else (request.path,)
    )
    # An argv element is a command pattern element: ``*``, ``?`` and ``**`` are wildcards there.
    parts += request.command or ()
    return not any(c in part for part in parts for c in "*?[")


def _printable(line: str) -> str:
    # Names in comments come from policies and tokens: a newline there would turn a comment
    # into policy text, an escape sequence would rewrite the reader's terminal.
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in line)


def _shown(path: str) -> str:
    """A policy file as the user would name it: relative to here when it is below here."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path


def _unused_name(base: str, taken: set[str]) -> str:
    name, n = base, 2
    while name in taken:
        name, n = f"{base}-{n}", n + 1
    return name


def choose_policy(policies: tuple[Policy, ...], used: list[Evidence], name: str | None) -> Policy:
    """The policy to suggest for: ``name``, or the one policy the evidence was decided by."""
    names = Counter(e.policy for e in used if e.policy)
    wanted = name or (next(iter(names)) if len(names) == 1 else None)
    if wanted is None:
        if not names:
            raise CliError("no decided requests in the window: nothing to suggest from")
        raise CliError(
            f"the requests were decided by several policies ({', '.join(sorted(names))}); "
            "choose one with --policy"
        )
    for policy in policies:
        if policy.name == wanted:
            return policy
    raise CliError(f"policy {wanted!r} is not in the policy directory; give --policies DIR")


def load(directory: Path) -> tuple[Policy, ...]:
    try:
        return load_policies(directory)
    except PolicyError as exc:
        raise CliError(f"policies in {directory} do not load:\n{exc}") from exc


def suggest(
    window_records: list, policies: tuple[Policy, ...], name: str | None, since: str, who: str
) -> str:
    """The suggestion's YAML text from a window's records."""
    used = evidence(window_records)
    policy = choose_policy(policies, used, name)
    mine = [e for e in used if e.policy == policy.name]
    return render(Suggestion(policy, raw_policy(policy), mine, since, who))


def print_warnings(broken: list[str]) -> None:
    for session_id in broken:
        print(
            f"eksgate: warning: session {session_id} does not verify (chain broken); "
            "its records are not used",
            file=sys.stderr,
        )
