"""Kubernetes ExecCredential documents, what kubectl's exec plugins print."""

from __future__ import annotations

from datetime import UTC, datetime

V1BETA1 = "client.authentication.k8s.io/v1beta1"
V1 = "client.authentication.k8s.io/v1"
API_VERSIONS = (V1BETA1, V1)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def exec_credential(token: str, expiration: datetime, api_version: str = V1BETA1) -> dict:
    """An ExecCredential carrying ``token`` and when it expires (kubectl refreshes then)."""
    if api_version not in API_VERSIONS:
        raise ValueError(f"unsupported ExecCredential apiVersion {api_version!r}")
    return {
        "apiVersion": api_version,
        "kind": "ExecCredential",
        "spec": {},
        "status": {"token": token, "expirationTimestamp": rfc3339(expiration)},
    }
