"""Kubeconfig files pointing real clients (kubectl, the Python client) at the emulator."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import yaml


def kubeconfig_dict(
    server_url: str,
    ca_pem: bytes,
    token: str,
    *,
    cluster_name: str = "eksgate-local",
    user_name: str = "eksgate-local-user",
    namespace: str | None = None,
) -> dict[str, Any]:
    """A single-context kubeconfig with the CA inline and a static bearer token."""
    context: dict[str, Any] = {"cluster": cluster_name, "user": user_name}
    if namespace:
        context["namespace"] = namespace
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": cluster_name,
                "cluster": {
                    "server": server_url,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": user_name, "user": {"token": token}}],
        "contexts": [{"name": cluster_name, "context": context}],
        "current-context": cluster_name,
        "preferences": {},
    }


def write_kubeconfig(
    path: str | os.PathLike[str],
    server_url: str,
    ca_pem: bytes,
    token: str,
    *,
    cluster_name: str = "eksgate-local",
    namespace: str | None = None,
) -> Path:
    """Write a kubeconfig (mode 0600: it holds a token) and return its path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(
        kubeconfig_dict(server_url, ca_pem, token, cluster_name=cluster_name, namespace=namespace),
        sort_keys=False,
    )
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    return target
