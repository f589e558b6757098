"""The CLI's calls to the eksgate API: one place for TLS trust, timeouts, size and errors."""

from __future__ import annotations

import json
from typing import Any

import urllib3

MAX_ANSWER_BYTES = 32 * 1024 * 1024


class CliError(Exception):
    """A failure to report on stderr (kubectl shows it) with a non-zero exit."""


def call_api(
    gateway: str,
    method: str,
    path: str,
    *,
    token: str,
    ca_file: str | None = None,
    body: dict[str, Any] | None = None,
    params: dict[str, str] | None = None,
    refusal: str = "the gateway refused",
    retries: int = 2,
) -> dict[str, Any]:
    """The JSON object the API answers with; CliError saying what went wrong otherwise."""
    http = urllib3.PoolManager(ca_certs=ca_file) if ca_file else urllib3.PoolManager()
    headers = {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json",
        "User-Agent": "eksgate-cli",
    }
    if body is not None:
        headers["Content-Type"] = "application/json"
    try:
        response = http.request(
            method,
            gateway.rstrip("/") + path,
            fields=params or None,
            body=json.dumps(body) if body is not None else None,
            headers=headers,
            timeout=urllib3.Timeout(connect=5, read=30),
            retries=urllib3.Retry(retries, status=0),
            preload_content=False,
        )
        try:
            data = response.read(MAX_ANSWER_BYTES + 1)
        finally:
            response.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        raise CliError(f"cannot reach the eksgate gateway at {gateway}: {exc}") from exc
    if len(data) > MAX_ANSWER_BYTES:
        raise CliError(f"the gateway's answer is larger than {MAX_ANSWER_BYTES} bytes")
    try:
        answer = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise CliError(f"the gateway answered HTTP {response.status} without JSON") from None
    if response.status != 200:
        message = answer.get("message", answer) if isinstance(answer, dict) else answer
        raise CliError(f"{refusal} (HTTP {response.status}): {message}")
    if not isinstance(answer, dict):
        raise CliError("the gateway's answer is not a JSON object")
    return answer
