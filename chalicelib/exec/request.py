"""The body of ``POST /v1/exec/{cluster}``, checked before anything else happens (pure)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from chalicelib.errors import BadRequest, PayloadTooLarge
from chalicelib.exec.client import MAX_STDIN_BYTES

MAX_ARGS = 256
MAX_ARGV_BYTES = 32 * 1024
MAX_TIMEOUT_SECONDS = 25  # API Gateway answers within 29 s; the rest is ours
DEFAULT_TIMEOUT_SECONDS = 20
MAX_BODY_BYTES = 2 * 1024 * 1024  # base64 of 1 MiB of stdin, plus the rest
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_FIELDS = frozenset({"namespace", "pod", "container", "argv", "stdin", "timeout"})


@dataclass(frozen=True)
class ExecInput:
    namespace: str
    pod: str
    container: str | None
    argv: tuple[str, ...]
    stdin: bytes | None
    timeout_seconds: int


def parse_exec_body(raw: bytes | None) -> ExecInput:
    """Read and check the JSON body; BadRequest (400) or PayloadTooLarge (413) otherwise."""
    if raw and len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the request body is over {MAX_BODY_BYTES} bytes")
    try:
        body: Any = json.loads(raw or b"")
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(unknown)}")
    namespace = _name(body, "namespace", _DNS_LABEL, required=True)
    pod = _name(body, "pod", _DNS_SUBDOMAIN, required=True)
    container = _name(body, "container", _DNS_LABEL, required=False)
    return ExecInput(
        namespace=str(namespace),
        pod=str(pod),
        container=container,
        argv=_argv(body.get("argv")),
        stdin=_stdin(body.get("stdin")),
        timeout_seconds=_timeout(body.get("timeout", DEFAULT_TIMEOUT_SECONDS)),
    )


def _name(body: dict, field: str, pattern: re.Pattern[str], *, required: bool) -> str | None:
    value = body.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not pattern.match(value):
        raise BadRequest(f"{field} must be a Kubernetes name (lower-case letters, digits, '-')")
    return value


def _argv(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise BadRequest("argv must be a non-empty list of strings (the command and arguments)")
    if len(value) > MAX_ARGS:
        raise BadRequest(f"argv has more than {MAX_ARGS} arguments")
    if not all(isinstance(a, str) for a in value):
        raise BadRequest("argv must be a list of strings")
    if not value[0]:
        raise BadRequest("argv[0] (the program) must not be empty")
    if any("\0" in a for a in value):
        raise BadRequest("arguments cannot contain NUL characters")
    if sum(len(a.encode()) for a in value) > MAX_ARGV_BYTES:
        raise BadRequest(f"argv is over {MAX_ARGV_BYTES} bytes")
    return tuple(value)


def _stdin(value: Any) -> bytes | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest("stdin must be base64 text")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest("stdin must be base64 text") from None
    if len(data) > MAX_STDIN_BYTES:
        raise PayloadTooLarge(f"stdin is over the limit of {MAX_STDIN_BYTES} bytes")
    return data


def _timeout(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequest("timeout must be a whole number of seconds, at least 1")
    if value > MAX_TIMEOUT_SECONDS:
        raise BadRequest(
            f"timeout is at most {MAX_TIMEOUT_SECONDS}s: the gateway answers within API "
            "Gateway's 29 seconds"
        )
    return value
