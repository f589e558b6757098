"""Writes that would store eksgate's own mask in the cluster, found before they leave.

Everything a caller reads through the gateway is masked: Secret data comes back as the base64
of ``MASK``, a password in a ConfigMap as ``password=***MASKED***``, kubectl's last-applied
annotation with its values masked. A file saved from ``kubectl get -o yaml`` and written back
whole (``replace``, ``apply``, ``edit`` of an object kubectl keeps a last-applied copy of)
would replace the live values with the marker, and the real values would be gone. So a write
whose body carries the marker in any form is refused, and the refusal names the fields.

A patch that leaves the masked fields out is safe: the cluster keeps what it has. That is
what the refusal points to.

Pure: takes the body and its media type, returns the fields that hold the marker.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

import yaml

from chalicelib.errors import BadRequest
from chalicelib.masking import MASK, MASKED_DATA_VALUE

# The forms the marker takes in what the gateway returns: as text, and as the base64 that a
# Secret's data values (and any base64 field) carry.
_MARKERS = (MASK, MASKED_DATA_VALUE)
_RAW_MARKERS = tuple(marker.encode("ascii") for marker in _MARKERS)
_BASE64 = re.compile(r"[A-Za-z0-9+/]{16,}={0,2}")
WHOLE_BODY = "(request body)"
# JSON patch operations that write a value; "test" only compares and "remove" writes nothing.
_WRITING_PATCH_OPS = frozenset({"add", "replace"})
_MOST_FIELDS_NAMED = 20


def masked_fields(body: bytes | None, media_type: str) -> list[str]:
    """The fields of a write body that hold eksgate's mask, as ``data.password``-style paths.

    Bodies that cannot be parsed (protobuf, broken YAML) are searched as bytes, and a hit is
    reported as the whole body: the mask must not reach the cluster in any encoding we know.
    """
    if not body:
        return []
    document = _parse(body, media_type)
    if document is _UNPARSED:
        return [WHOLE_BODY] if any(marker in body for marker in _RAW_MARKERS) else []
    found: list[str] = []
    if media_type == "application/json-patch+json" and isinstance(document, list):
        for index, operation in enumerate(document):
            if isinstance(operation, dict) and operation.get("op") in _WRITING_PATCH_OPS:
                where = str(operation.get("path") or f"[{index}]")
                _walk(operation.get("value"), where, found)
    else:
        _walk(document, "", found)
    if not found and any(marker in body for marker in _RAW_MARKERS):
        # Parsed, yet the bytes hold the marker somewhere the walk did not reach (a JSON patch
        # "test" value is fine, but anything else is not worth guessing about).
        if media_type != "application/json-patch+json":
            found.append(WHOLE_BODY)
    return found


def holds_mask(value: str) -> bool:
    """Whether a string is, holds, or is the base64 of something holding the mask."""
    if any(marker in value for marker in _MARKERS):
        return True
    if _BASE64.fullmatch(value):
        try:
            decoded = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return False
        return MASK.encode("ascii") in decoded
    return False


def describe_fields(fields: list[str]) -> str:
    shown = ", ".join(fields[:_MOST_FIELDS_NAMED])
    more = len(fields) - _MOST_FIELDS_NAMED
    return shown + (f" and {more} more" if more > 0 else "")


_UNPARSED = object()


def _parse(body: bytes, media_type: str) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return _UNPARSED
    try:
        if media_type in ("application/yaml", "application/apply-patch+yaml"):
            return yaml.safe_load(text)
        return json.loads(text)
    except (ValueError, yaml.YAMLError, RecursionError):
        return _UNPARSED


def _walk(value: Any, path: str, found: list[str]) -> None:
    if isinstance(value, str):
        if holds_mask(value):
            found.append(path or WHOLE_BODY)
    elif isinstance(value, dict):
        for key, item in value.items():
            _walk(item, _join(path, str(key)), found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _walk(item, f"{path}[{index}]", found)


def _join(path: str, key: str) -> str:
    """``data.password``; keys that are not plain names in brackets, as kubectl prints them."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key):
        return f"{path}.{key}" if path else key
    return f"{path}[{key}]"


def masked_write_refusal(fields: list[str], target: str, kubectl_command: str) -> BadRequest:
    """The refusal a write carrying the mask gets: which fields, why, and what works instead.

    ``target`` names the object (``configmap/app -n shop``) for the advice; ``kubectl_command``
    is kubectl's own ``Kubectl-Command`` header, so ``kubectl edit`` is told about its trap.
    """
    where = describe_fields(fields)
    advice = (
        f"change only the fields you mean to with a patch that leaves the masked fields out "
        f"(the cluster keeps their live values), e.g. `kubectl patch {target} --type merge "
        '-p \'{"data":{"KEY":"new value"}}\'`, or supply the real values'
    )
    if kubectl_command.strip() == "kubectl edit":
        advice = (
            "kubectl edit sends back kubectl's last-applied copy of the object, which you "
            "read masked; " + advice
        )
    elif kubectl_command.strip() == "kubectl apply":
        advice = "kubectl apply writes the whole file into the last-applied annotation; " + advice
    return BadRequest(
        f"eksgate refused this write: {where} would store eksgate's mask ({MASK}) in the "
        f"cluster in place of the live values, which would be lost. What you read through "
        f"eksgate is masked and must never be written back as it is: {advice}",
        details={field: f"holds eksgate's mask {MASK}" for field in fields[:_MOST_FIELDS_NAMED]},
    )
