"""``eksgate policy suggest|simulate``: policies checked against the audit trail.

Both read the trail through the auditor API with an auditor's OIDC token, as
``eksgate sessions`` does, and verify each session's hash chain before using it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from chalicelib.policy import Policy
from eksgate.api_client import CliError, call_api
from eksgate.audit_window import Window, read_window, since_time
from eksgate.policy_evidence import evidence
from eksgate.policy_simulate import render as render_simulation
from eksgate.policy_simulate import simulate
from eksgate.policy_suggest import load, print_warnings, suggest
from eksgate.token_cmd import read_oidc_token

EXIT_BREAKING = 1
EXIT_ERROR = 2


def _window(args: Any, selectors: list[dict[str, str]]) -> Window:
    try:
        since = since_time(args.since)
    except ValueError as exc:
        raise CliError(f"--since: {exc}") from exc
    token = read_oidc_token(args.oidc_token_file, args.oidc_token_env)

    def get(path: str, params: dict[str, str] | None) -> dict[str, Any]:
        return call_api(args.gateway, "GET", path, token=token, ca_file=args.ca_file, params=params)

    window = read_window(get, selectors, since)
    print_warnings(window.broken_sessions)
    return window


def _literal_clusters(policies: tuple[Policy, ...]) -> list[str]:
    return sorted({c for p in policies for c in p.clusters if not any(ch in c for ch in "*?[")})


def cmd_suggest(args: Any, policy_dir: Path) -> int:
    """Print the suggested policy YAML; exit 2 if it cannot be made."""
    try:
        policies = load(policy_dir)
        if args.identity:
            selectors = [{"identity": args.identity}]
            who = f"identity {args.identity}"
        elif args.policy:
            current = [p for p in policies if p.name == args.policy]
            if not current:
                raise CliError(f"policy {args.policy!r} is not in {policy_dir}")
            clusters = args.cluster or _literal_clusters(tuple(current))
            if not clusters:
                raise CliError(
                    f"policy {args.policy!r} names clusters only by glob; give --cluster"
                )
            selectors = [{"cluster": c} for c in clusters]
            who = f"policy {args.policy} on {', '.join(clusters)}"
        else:
            raise CliError("give --identity SUBJECT or --policy NAME")
        window = _window(args, selectors)
        records = [r for r in window.records if not args.cluster or r.cluster in args.cluster]
        print(suggest(records, policies, args.policy, window.since, who), end="")
        return 0
    except CliError as exc:
        print(f"eksgate: {exc}", file=sys.stderr)
        return EXIT_ERROR


def cmd_simulate(args: Any, policy_dir: Path) -> int:
    """Replay the window against ``policy_dir``; exit 1 if anything allowed would be denied."""
    try:
        candidate = load(policy_dir)
        if args.identity:
            selectors = [{"identity": i} for i in args.identity]
        else:
            clusters = args.cluster or _literal_clusters(candidate)
            if not clusters:
                raise CliError("the policies name clusters only by glob; give --cluster")
            selectors = [{"cluster": c} for c in clusters]
        window = _window(args, selectors)
        records = [r for r in window.records if not args.cluster or r.cluster in args.cluster]
        result = simulate(evidence(records), candidate)
        for line in render_simulation(result, window.since, window.sessions):
            print(line)
        return EXIT_BREAKING if result.breaking else 0
    except CliError as exc:
        print(f"eksgate: {exc}", file=sys.stderr)
        return EXIT_ERROR
