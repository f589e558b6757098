"""Kubernetes ``Status`` bodies: what every error on the proxy path looks like.

kubectl and client-go read ``reason``/``message``/``code`` and print
``Error from server (Forbidden): <message>``; the HTTP status and ``code`` always agree.
"""

from __future__ import annotations

from typing import Any

from chalicelib.errors import EksgateError


def status_body(error: EksgateError) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": error.message,
        "reason": error.reason,
        "code": error.status,
    }
    if error.details:
        body["details"] = {
            "causes": [{"field": k, "message": str(v)} for k, v in error.details.items()]
        }
        body["details"].update(
            {
                k: v
                for k, v in error.details.items()
                if k in ("name", "group", "kind", "uid", "retryAfterSeconds")
            }
        )
    return body
