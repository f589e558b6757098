"""A realistic large policy set: 200 policies x 20 rules, one file per team, disjoint subjects.

Shared by the policy benchmarks so loading and decisions measure the same documents.
"""

from __future__ import annotations

from pathlib import Path

from chalicelib.identity import Identity
from chalicelib.kube.request import KubeRequest, resolve

ISSUER = "https://token.actions.githubusercontent.com"
RESOURCES = ["pods", "deployments", "services", "configmaps", "jobs", "cronjobs", "ingresses"]


def policy_yaml(team: int, rules: int = 20) -> str:
    """One team's policy; every fourth team matches repositories by glob, not by name."""
    repo = f"acme/team-{team}-*" if team % 4 == 0 else f"acme/repo-{team}"
    lines = [
        f"name: team-{team}",
        f"description: team {team}'s CI agents",
        "subjects:",
        f"  - issuer: {ISSUER}",
        f"    claims: {{repository: {repo}, environment: [production, staging]}}",
        "clusters: [prod-*, staging]",
        f"role: arn:aws:iam::123456789012:role/team-{team}",
        "max_session: 15m",
        "rules:",
    ]
    for i in range(rules):
        resource = RESOURCES[i % len(RESOURCES)]
        namespace = f"ns-{team}-{i % 5}"
        effect = ("allow", "allow", "approve", "deny")[i % 4]
        lines += [
            f"  - name: rule-{i}",
            f"    effect: {effect}",
            "    verbs: [get, list, watch]" if effect == "allow" else "    verbs: [patch, delete]",
            "    apiGroups: ['', apps, batch, networking.k8s.io]",
            f"    resources: [{resource}, {resource}/status]",
            f"    namespaces: [{namespace}, shared-*]",
        ]
        if effect == "approve":
            lines += [
                "    approvers: [slack-group:platform-oncall]",
                "    approval: {mode: once, ttl: 15m}",
            ]
    return "\n".join(lines) + "\n"


def write_corpus(directory: Path, policies: int = 200, rules: int = 20) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for team in range(policies):
        (directory / f"team-{team:03d}.yaml").write_text(policy_yaml(team, rules))
    return directory


def identities(policies: int = 200) -> list[Identity]:
    """One caller per team, each matching exactly that team's policy."""
    result = []
    for team in range(policies):
        repo = f"acme/team-{team}-api" if team % 4 == 0 else f"acme/repo-{team}"
        result.append(
            Identity(
                f"repo:{repo}:environment:production",
                ISSUER,
                claims={"repository": repo, "environment": "production", "ref": "refs/heads/main"},
            )
        )
    return result


def requests(team: int) -> list[KubeRequest]:
    """A mix of allowed, approved, denied and unmatched requests for one team."""
    result = []
    for i in range(20):
        resource = RESOURCES[i % len(RESOURCES)]
        ns = f"ns-{team}-{i % 5}"
        result.append(resolve("GET", f"/api/v1/namespaces/{ns}/{resource}/x-{i}", ""))
        result.append(resolve("PATCH", f"/apis/apps/v1/namespaces/{ns}/{resource}/x-{i}", ""))
    result.append(resolve("DELETE", "/api/v1/namespaces/kube-system/secrets/root", ""))
    result.append(resolve("GET", "/api/v1/namespaces/shared-a/pods", ""))
    return result
