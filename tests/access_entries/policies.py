"""Policies for the access-entry tests, built through the real loader so they are valid."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from chalicelib.policy import Policy, load_policy_text

ACCOUNT = "123456789012"
VIEW = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSViewPolicy"
EDIT = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSEditPolicy"
ADMIN = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSAdminPolicy"


def role_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def read(resources: list[str], namespaces: list[str] | None = None, **extra: Any) -> dict:
    rule: dict[str, Any] = {
        "effect": "allow",
        "verbs": ["get", "list", "watch"],
        "resources": resources,
        **extra,
    }
    if namespaces:
        rule["namespaces"] = namespaces
    return rule


def write(
    resources: list[str],
    namespaces: list[str] | None = None,
    *,
    effect: str = "approve",
    verbs: list[str] | None = None,
    **extra: Any,
) -> dict:
    rule: dict[str, Any] = {
        "effect": effect,
        "verbs": verbs or ["create", "update", "patch"],
        "resources": resources,
        **extra,
    }
    if namespaces:
        rule["namespaces"] = namespaces
    if effect == "approve":
        rule["approvers"] = ["slack-group:platform-oncall"]
    return rule


def document(
    name: str, role: str, rules: list[dict], clusters: tuple[str, ...] = ("prod-eu",)
) -> dict:
    return {
        "name": name,
        "subjects": [{"issuer": "https://issuer.example"}],
        "clusters": list(clusters),
        "role": role_arn(role),
        "rules": rules,
    }


def policy(
    name: str, role: str, rules: list[dict], clusters: tuple[str, ...] = ("prod-eu",)
) -> Policy:
    return load_policy_text(yaml.safe_dump(document(name, role, rules, clusters)), f"{name}.yaml")[
        0
    ]


def write_policies(directory: Path, *documents: dict) -> Path:
    """Write each policy document to ``directory/<name>.yaml``; return the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.yaml"):
        stale.unlink()
    for doc in documents:
        (directory / f"{doc['name']}.yaml").write_text(yaml.safe_dump(doc))
    return directory
