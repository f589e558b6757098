"""``eksgate policy lint|test`` and ``eksgate can-i``: policies checked before they deploy."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from chalicelib.identity import Identity
from chalicelib.kube.request import KubeRequest
from chalicelib.policy import Policy, PolicyError, Rule, decide, load_policies
from chalicelib.policy.engine import select_policy
from chalicelib.policy.loader import Problem
from eksgate.kube_names import resolve_resource_type

_PRECEDENCE = {"deny": 0, "approve": 1, "allow": 2}


# ---- lint ---------------------------------------------------------------------------------


def _covers(outer: tuple[str, ...], inner: tuple[str, ...], empty_means_all: bool = False) -> bool:
    if empty_means_all and not outer:
        return True
    if empty_means_all and not inner:
        return False
    return "*" in outer or set(inner) <= set(outer)


def _resource_covers(outer: str, inner: str) -> bool:
    if outer in ("*", inner):
        return True
    resource, _, sub = inner.partition("/")
    return bool(sub) and (outer == f"*/{sub}" or outer == f"{resource}/*")


def rule_covers(outer: Rule, inner: Rule) -> bool:
    """True when every request ``inner`` matches is also matched by ``outer``."""
    if inner.non_resource_urls or outer.non_resource_urls:
        return _covers(outer.verbs, inner.verbs) and set(inner.non_resource_urls) <= set(
            outer.non_resource_urls
        )
    return (
        _covers(outer.verbs, inner.verbs)
        and _covers(outer.api_groups, inner.api_groups)
        and all(any(_resource_covers(o, i) for o in outer.resources) for i in inner.resources)
        and _covers(outer.namespaces, inner.namespaces, empty_means_all=True)
        and _covers(outer.resource_names, inner.resource_names, empty_means_all=True)
        and _commands_cover(outer, inner)
    )


def _commands_cover(outer: Rule, inner: Rule) -> bool:
    """A pods/exec rule naming commands covers only those (compared as written, so a lint
    warning is never claimed for commands it cannot prove are covered)."""
    if not outer.commands:
        return True
    return bool(inner.commands) and set(map(tuple, inner.commands)) <= set(
        map(tuple, outer.commands)
    )


def shadowed_rules(policy: Policy) -> list[tuple[Rule, Rule]]:
    """(shadowed, by) pairs: rules that can never decide because another always wins."""
    pairs = []
    for rule in policy.rules:
        for other in policy.rules:
            if other is rule or not rule_covers(other, rule):
                continue
            beats = _PRECEDENCE[other.effect] < _PRECEDENCE[rule.effect]
            earlier_twin = other.effect == rule.effect and other.index < rule.index
            if beats or earlier_twin:
                pairs.append((rule, other))
                break
    return pairs


def _trusted_issuers(policy_dir: Path) -> set[str] | None:
    """Issuers any stage of the enclosing Chalice project trusts; None outside a project."""
    config = next(
        (
            d / ".chalice" / "config.json"
            for d in policy_dir.resolve().parents
            if (d / ".chalice" / "config.json").is_file()
        ),
        None,
    )
    if config is None:
        return None
    data = json.loads(config.read_text())
    issuers: set[str] = set()
    for stage in [data, *data.get("stages", {}).values()]:
        raw = stage.get("environment_variables", {}).get("EKSGATE_OIDC_ISSUERS")
        if raw:
            issuers.update(i["issuer"] for i in json.loads(raw))
    return issuers


def lint_warnings(policies: Iterable[Policy], trusted_issuers: set[str] | None) -> list[Problem]:
    """What is valid but almost certainly a mistake."""
    warnings = []
    for policy in policies:
        for i, subject in enumerate(policy.subjects):
            glob = any(c in subject.issuer for c in "*?[")
            if trusted_issuers is not None and not glob and subject.issuer not in trusted_issuers:
                warnings.append(
                    Problem(
                        policy.source,
                        policy.line,
                        f"subjects[{i}].issuer",
                        f"no stage trusts issuer {subject.issuer!r}, so this "
                        "subject can match no one",
                    )
                )
            for claim, patterns in subject.claims.items():
                if any(p == "" for p in patterns):
                    warnings.append(
                        Problem(
                            policy.source,
                            policy.line,
                            f"subjects[{i}].claims.{claim}",
                            "an empty value can match no one",
                        )
                    )
        if policy.masking_narrowed:
            warnings.append(
                Problem(
                    policy.source,
                    policy.line,
                    "masking",
                    "masking is narrowed: "
                    + ", ".join(policy.masking_narrowed)
                    + " not masked for this policy (credentials of those kinds come back in "
                    "clear); a patterns list also leaves out families added later. Remove it "
                    "(every pattern is the default) or say masking: {except: [...]} explicitly",
                )
            )
        for rule, by in shadowed_rules(policy):
            warnings.append(
                Problem(
                    policy.source,
                    rule.line,
                    f"rules[{rule.index}]",
                    f"never decides anything: {by.label} ({by.effect}) matches "
                    "every request it matches and takes precedence",
                )
            )
    return warnings


def cmd_lint(directory: Path) -> int:
    try:
        policies = load_policies(directory)
    except PolicyError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        print(f"{len(exc.problems)} error(s)", file=sys.stderr)
        return 1
    warnings = lint_warnings(policies, _trusted_issuers(directory))
    for warning in warnings:
        print(f"warning: {warning}")
    print(f"{len(policies)} policies OK" + (f", {len(warnings)} warning(s)" if warnings else ""))
    return 0


def cmd_compile(directory: Path) -> int:
    """Write the policy snapshot a cold start loads; exit 1 with lint's errors if any."""
    from chalicelib.policy.snapshot import compile_snapshot

    try:
        path, count = compile_snapshot(directory)
    except PolicyError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        print(f"{len(exc.problems)} error(s); no snapshot written", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot write the snapshot: {exc}", file=sys.stderr)
        return 1
    print(f"{count} policies compiled into {path}")
    return 0


# ---- requests and identities as tests and can-i write them ----------------------------------


def identity_from_claims(claims: dict[str, Any], groups_claim: str = "groups") -> Identity:
    if not isinstance(claims.get("iss"), str) or not isinstance(claims.get("sub"), str):
        raise ValueError("an identity needs 'iss' and 'sub' claims")
    groups = claims.get(groups_claim, [])
    return Identity(
        subject=claims["sub"],
        issuer=claims["iss"],
        email=claims.get("email"),
        groups=tuple(groups) if isinstance(groups, list) else (),
        claims=claims,
    )


def kube_request(
    verb: str, resource: str, namespace: str = "", name: str = "", subresource: str = ""
) -> KubeRequest:
    """A resolved request from kubectl-style words: ``get deploy/web -n shop``."""
    if resource.startswith("/"):
        return KubeRequest(verb=verb, path=resource, is_resource_request=False)
    type_text, _, name_part = resource.partition("/")
    rtype = resolve_resource_type(type_text)
    name = name or name_part
    return KubeRequest(
        verb=verb,
        path="",
        api_group=rtype.group,
        api_version=rtype.version,
        resource=rtype.resource,
        subresource=subresource,
        namespace=namespace if rtype.namespaced or rtype.resource == "namespaces" else "",
        name=name,
    )


def _request_from_case(spec: dict[str, Any]) -> KubeRequest:
    if "path" in spec:
        from chalicelib.kube.request import resolve

        path, _, query = spec["path"].partition("?")
        return resolve(spec.get("method", "GET"), path, query)
    resource = spec["resource"]
    subresource = ""
    if "/" in resource and not spec.get("name"):
        resource, _, subresource = resource.partition("/")
    return kube_request(
        spec["verb"],
        resource,
        spec.get("namespace", ""),
        spec.get("name", ""),
        spec.get("subresource", subresource),
    )


# ---- test ---------------------------------------------------------------------------------


@dataclass
class CaseResult:
    file: str
    name: str
    ok: bool
    detail: str


def run_cases(policies: tuple[Policy, ...], files: Iterable[Path]) -> list[CaseResult]:
    results = []
    for path in files:
        document = yaml.safe_load(path.read_text()) or {}
        identities = document.get("identities", {})
        for index, case in enumerate(document.get("cases", [])):
            name = case.get("name", f"cases[{index}]")
            try:
                who = case["identity"]
                claims = identities[who] if isinstance(who, str) else who
                identity = identity_from_claims(claims)
                request = _request_from_case(case["request"])
                decision = decide(identity, case["cluster"], request, policies)
            except (KeyError, ValueError, TypeError) as exc:
                results.append(CaseResult(str(path), name, False, f"bad case: {exc}"))
                continue
            expected = case["expect"]
            expected_rule = case.get("rule")
            ok = decision.effect == expected and (
                expected_rule is None or decision.rule_label == expected_rule
            )
            detail = f"{decision.effect} by {decision.policy or '-'}/{decision.rule_label}"
            if not ok:
                detail = (
                    f"expected {expected}"
                    + (f" by rule {expected_rule}" if expected_rule else "")
                    + f", got {detail}: {decision.reason}"
                )
            results.append(CaseResult(str(path), name, ok, detail))
    return results


def cmd_test(directory: Path) -> int:
    try:
        policies = load_policies(directory)
    except PolicyError as exc:
        print(f"error: policies do not load:\n{exc}", file=sys.stderr)
        return 1
    case_files = sorted((directory / "tests").glob("*.y*ml"))
    if not case_files:
        print(f"no test cases in {directory / 'tests'}", file=sys.stderr)
        return 1
    results = run_cases(policies, case_files)
    for result in results:
        print(f"{'PASS' if result.ok else 'FAIL'}  {result.name}  ({result.detail})")
    failed = sum(not r.ok for r in results)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


# ---- can-i --------------------------------------------------------------------------------


def cmd_can_i(
    directory: Path,
    subject_file: Path,
    verb: str,
    resource: str,
    namespace: str,
    cluster: str,
    subresource: str,
) -> int:
    try:
        policies = load_policies(directory)
        claims = yaml.safe_load(subject_file.read_text())
        identity = identity_from_claims(claims)
        request = kube_request(verb, resource, namespace, subresource=subresource)
    except PolicyError as exc:
        print(f"error: policies do not load:\n{exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError, AttributeError, yaml.YAMLError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    decision = decide(identity, cluster, request, policies)
    try:
        policy = select_policy(identity, cluster, policies)
        where = f"{policy.source}:{decision.rule.line}" if decision.rule else policy.source
    except Exception:
        where = ""
    print(decision.effect if decision.effect != "approve" else "approve (needs a human)")
    print(f"  policy: {decision.policy or '(none)'}")
    print(f"  rule:   {decision.rule_label}" + (f"  ({where})" if where else ""))
    print(f"  reason: {decision.reason}")
    return 0 if decision.effect == "allow" else 1
