"""The JSON Schema every policy document must satisfy (checked before anything is built)."""

from __future__ import annotations

from chalicelib.masking import PATTERN_NAMES as _MASKING_PATTERNS
from chalicelib.policy.durations import DURATION_PATTERN

VERBS = [
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
    "proxy",
    "*",
]
PATTERN_NAMES = sorted(_MASKING_PATTERNS)

_strings = {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}
_claim_value = {
    "oneOf": [
        {"type": "string"},
        {"type": "boolean"},
        {"type": "integer"},
        {"type": "array", "items": {"type": "string"}, "minItems": 1},
    ]
}
_duration = {"type": "string", "pattern": DURATION_PATTERN}

_role_arn = {
    "type": "string",
    "pattern": r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,128}$",
}

POLICY_SCHEMA: dict = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "subjects", "clusters", "role", "rules"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"},
        "description": {"type": "string"},
        "subjects": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["issuer"],
                "properties": {
                    "issuer": {"type": "string", "minLength": 1},
                    "claims": {"type": "object", "additionalProperties": _claim_value},
                },
            },
        },
        "clusters": _strings,
        "role": _role_arn,
        "direct": {"type": "boolean"},
        "workload": {"type": "boolean"},
        "max_session": _duration,
        "masking": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "secret_data": {"enum": ["always"]},
                # Deprecated: narrows to the listed families (lint warns); prefer ``except``.
                "patterns": {"type": "array", "items": {"enum": PATTERN_NAMES}},
                "except": {"type": "array", "items": {"enum": PATTERN_NAMES}},
                "unscannable_binary": {"enum": ["withhold", "keep"]},
            },
        },
        "rules": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["effect"],
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "effect": {"enum": ["allow", "approve", "deny"]},
                    "reason": {"type": "string"},
                    "verbs": {"type": "array", "items": {"enum": VERBS}, "minItems": 1},
                    "apiGroups": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    "resources": _strings,
                    "namespaces": _strings,
                    "resourceNames": _strings,
                    "nonResourceURLs": _strings,
                    "approvers": _strings,
                    "commands": {"type": "array", "minItems": 1, "items": _strings},
                    "approval": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "mode": {"enum": ["once", "grant"]},
                            "ttl": _duration,
                            "window": _duration,
                            "min_approvers": {"type": "integer", "minimum": 1, "maximum": 5},
                            "direct": {"type": "boolean"},
                            "role": _role_arn,
                            "channel": {"type": "string", "minLength": 1},
                        },
                    },
                },
            },
        },
    },
}
