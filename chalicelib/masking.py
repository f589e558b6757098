"""Masking of responses before they leave the gateway: Secret data, tokens, credential patterns.

Pure functions over decoded JSON and text. Objects are masked by what they are (their ``kind``,
or the kind their list implies), never by the request path that fetched them, so a Secret is
masked wherever it appears: a single object, any list, a Table row, a watch event, an embedded
manifest, or the ``last-applied-configuration`` annotation that kubectl leaves behind.

Secret data masking is always on. Pattern masking (credential-shaped text in logs, ConfigMaps,
env values, annotations and any other string) is chosen by policy from ``PATTERN_NAMES``. A
pattern replaces only the secret part with ``MASK`` and keeps the key around it, so masked
output stays readable and, for JSON, structurally intact: patterns run on decoded string
values, never on serialized JSON.

Anything that cannot be understood is withheld rather than passed through: a Secret whose
``data`` is not a mapping, an unparseable last-applied annotation, an unparseable watch line.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MASK = "***MASKED***"
# Every Secret data value becomes this one valid base64 string, so clients still decode the
# object and nothing about the original value (not even its length) is revealed.
MASKED_DATA_VALUE = base64.b64encode(MASK.encode("ascii")).decode("ascii")
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"

# Written in place of a watch stream line that could not be parsed (and so not masked).
WITHHELD_EVENT: dict[str, Any] = {
    "type": "ERROR",
    "object": {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "eksgate withheld a watch event it could not parse, so could not mask",
        "reason": "InternalError",
        "code": 500,
    },
}
_WITHHELD_LINE = (json.dumps(WITHHELD_EVENT, separators=(",", ":")) + "\n").encode("utf-8")


@dataclass(frozen=True)
class _Pattern:
    """A credential shape: every named group starting with ``secret`` is replaced by MASK."""

    regex: re.Pattern[str]
    # For keyed values (ConfigMap data, env vars): a key this matches has its whole value masked.
    sensitive_key: re.Pattern[str] | None = None


# Quantifiers below are possessive (``*+``), bounded, or anchored to the start of a run of
# characters wherever a failed attempt could otherwise rescan the same run from every position:
# a multi-megabyte log line must cost linear time, not quadratic. A quoted value whose closing
# quote is missing (a truncated line) is masked to the end of the line.
_VALUE = (
    r"""(?:"(?P<secret_dq>[^"\r\n]*+)"?"""
    r"""|'(?P<secret_sq>[^'\r\n]*+)'?"""
    r"""|(?P<secret_bare>[^\s"',;&]++))"""
)
_ASSIGNMENT_KEY = r"(?:passw(?:or)?d|secret|token|api[_-]?key|apikey)"
_AWS_SECRET_KEY = (
    r"(?:aws[_\-. ]?secret(?:[_\-. ]?access)?[_\-. ]?key|secret[_\-. ]?access[_\-. ]?key)"
)
_ASSIGN = r"[\w.-]{0,64}+[\"']?[ \t]*+[:=]\s*+"

_PATTERNS: dict[str, _Pattern] = {
    # Long-lived (AKIA) and temporary (ASIA) access key ids.
    "aws-access-key": _Pattern(re.compile(r"(?P<secret>(?:AKIA|ASIA)[A-Z0-9]{16})")),
    # The value after an aws_secret_access_key-like key, whatever its length, so a truncated
    # or padded key is masked too.
    "aws-secret-key": _Pattern(
        re.compile(rf"(?i){_AWS_SECRET_KEY}{_ASSIGN}{_VALUE}"),
        sensitive_key=re.compile(rf"(?i){_AWS_SECRET_KEY}"),
    ),
    # Any PEM private key block (RSA, EC, DSA, OPENSSH, ENCRYPTED, PGP ... BLOCK). A block
    # without its END line (a truncated log) is masked to the end of the text.
    "private-key": _Pattern(
        re.compile(
            r"-----BEGIN [A-Z0-9 ]{0,64}PRIVATE KEY(?: BLOCK)?-----"
            r"(?P<secret>.*?)(?=-----END [A-Z0-9 ]{0,64}PRIVATE KEY(?: BLOCK)?-----|\Z)",
            re.DOTALL,
        )
    ),
    # header.payload.signature, base64url; the header of every JWT starts with '{"' = eyJ.
    "jwt": _Pattern(
        re.compile(
            r"(?<![A-Za-z0-9_-])(?P<secret>eyJ[A-Za-z0-9_-]{4,}+\.[A-Za-z0-9_-]{4,}+"
            r"\.[A-Za-z0-9_-]*+)"
        )
    ),
    # key=value / key: value for password-like keys (the key's prefix, as in DB_PASSWORD, is
    # kept as it is), and the password of scheme://user:password@host.
    "password-assignment": _Pattern(
        re.compile(
            rf"(?i){_ASSIGNMENT_KEY}{_ASSIGN}{_VALUE}"
            r"|(?<![a-z0-9+.-])[a-z][a-z0-9+.-]{0,31}+://[^\s:/?#@]*+:(?P<secret_url>[^\s/?#]+)@"
        ),
        sensitive_key=re.compile(rf"(?i){_ASSIGNMENT_KEY}"),
    ),
    # "Authorization: <scheme> <credentials>": everything after a well-known scheme (or the
    # whole value, for any other scheme) to the end of the line; and a bare "Bearer <token>".
    "bearer-token": _Pattern(
        re.compile(
            r"(?i)authorization[\"']?[ \t]*+[:=][ \t]*+[\"']?(?:(?:bearer|basic|token)[ \t]++)?"
            r"(?P<secret_header>[^\r\n\"']++)"
            r"|\bbearer\s++(?P<secret_bearer>[A-Za-z0-9._~+/-]{8,}+=*+)"
        )
    ),
    "slack-token": _Pattern(re.compile(r"(?P<secret>xox[baprs]-[A-Za-z0-9-]++)")),
    "github-token": _Pattern(
        re.compile(r"(?P<secret>(?:gh[pousr]_[A-Za-z0-9]{20,}+|github_pat_[A-Za-z0-9_]{20,}+))")
    ),
}

PATTERN_NAMES: frozenset[str] = frozenset(_PATTERNS)
# Order matters only for readability: a PEM block is masked whole before the narrower
# patterns look inside it.
_PATTERN_ORDER = ("private-key", *sorted(PATTERN_NAMES - {"private-key"}))


@dataclass(frozen=True)
class MaskingSettings:
    """What to mask. Secret data is always masked; policies choose the text patterns.

    ``secret_data`` exists so the policy schema can spell ``secret_data: always``; turning it
    off is refused. ``patterns`` defaults to every built-in pattern (fail closed).
    """

    secret_data: bool = True
    patterns: tuple[str, ...] = tuple(sorted(PATTERN_NAMES))

    def __post_init__(self) -> None:
        if self.secret_data is not True:
            raise ValueError("Secret data masking is always on and cannot be turned off")
        unknown = sorted(set(self.patterns) - PATTERN_NAMES)
        if unknown:
            raise ValueError(
                f"unknown masking pattern(s) {', '.join(unknown)}; "
                f"choose from {', '.join(sorted(PATTERN_NAMES))}"
            )


DEFAULT_SETTINGS = MaskingSettings()


def mask_text(text: str, settings: MaskingSettings = DEFAULT_SETTINGS) -> str:
    """Mask the configured credential patterns in free text (``pods/log``, any string value)."""
    for name in _PATTERN_ORDER:
        if name in settings.patterns:
            text = _PATTERNS[name].regex.sub(_mask_secret_groups, text)
    return text


def mask_document(doc: Any, settings: MaskingSettings = DEFAULT_SETTINGS) -> Any:
    """Return a masked copy of a decoded Kubernetes JSON response; ``doc`` is not modified.

    Handles single objects, ``*List`` and generic ``List`` documents, ``Table`` (any
    ``includeObject``), watch events, and anything nested inside them.
    """
    return _mask_object(doc, settings, implied_kind="")


def mask_watch_stream(chunk: bytes, settings: MaskingSettings = DEFAULT_SETTINGS) -> bytes:
    """Mask a newline-delimited JSON watch stream, one event per line.

    A line that is not a JSON object (cut off, not UTF-8, not JSON) is replaced by an ERROR
    event saying it was withheld: it can neither be masked nor passed on. ``chunk`` must hold
    whole lines; a trailing partial line is treated as malformed.
    """
    out = []
    for line in chunk.split(b"\n"):
        if not line.strip():
            continue
        try:
            event = json.loads(line, parse_constant=_reject_constant)
            if not isinstance(event, dict):
                raise ValueError("a watch event is a JSON object")
            masked = _dumps(mask_document(event, settings)).encode("utf-8") + b"\n"
        except (ValueError, RecursionError):  # ValueError covers bad UTF-8 and bad JSON
            # One bad (or absurdly nested) line must not end the stream, nor pass unmasked.
            out.append(_WITHHELD_LINE)
            continue
        out.append(masked)
    return b"".join(out)


# ---------------------------------------------------------------------------------------------
# Objects


def _mask_object(obj: Any, settings: MaskingSettings, implied_kind: str) -> Any:
    """Mask a value found where a whole Kubernetes object is expected."""
    if isinstance(obj, list):
        return [_mask_object(item, settings, implied_kind) for item in obj]
    if not isinstance(obj, dict):
        # Something that should be a Secret but is not even an object is withheld.
        return MASK if implied_kind == "Secret" and obj is not None else _walk(obj, settings)
    raw_kind = obj.get("kind")
    kind = raw_kind if isinstance(raw_kind, str) else ""
    if (
        kind == "Secret"
        or implied_kind == "Secret"
        or (not (kind or implied_kind) and _looks_like_secret(obj))
    ):
        return _mask_secret(obj, settings)
    if _is_watch_event(obj, kind):
        return _mask_watch_event(obj, settings)
    if kind == "Table":
        return _mask_table(obj, settings)
    if (not kind or kind.endswith("List")) and "items" in obj:
        return _mask_list(obj, kind, settings)
    handler = _KIND_HANDLERS.get(kind or implied_kind)
    if handler is not None:
        return handler(obj, settings)
    # Status, workloads and everything else: patterns on every string, env values by name,
    # last-applied annotations parsed and masked, embedded objects masked by their own kind.
    return _walk_dict(obj, settings)


def _looks_like_secret(obj: dict[str, Any]) -> bool:
    """A kind-less object with Secret fields is treated as a Secret (fail closed)."""
    return "data" in obj or "stringData" in obj


_SECRET_FIELDS_KEPT = frozenset({"apiVersion", "kind", "type", "immutable"})


def _mask_secret(obj: dict[str, Any], settings: MaskingSettings) -> Any:
    """Every data value becomes ``MASKED_DATA_VALUE``, every stringData value ``MASK``."""
    data, string_data, metadata = obj.get("data"), obj.get("stringData"), obj.get("metadata")
    if any(v is not None and not isinstance(v, dict) for v in (data, string_data, metadata)):
        # Not the shape we know how to mask: withhold it all.
        return MASK
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key == "data" and value is not None:
            out[key] = {name: MASKED_DATA_VALUE for name in value}
        elif key == "stringData" and value is not None:
            out[key] = {name: MASK for name in value}
        elif key == "metadata" and value is not None:
            out[key] = _mask_metadata(value, settings, applied_kind="Secret")
        elif value is None or (key in _SECRET_FIELDS_KEPT and isinstance(value, (str, bool))):
            out[key] = value
        else:
            # A field a v1 Secret does not have may carry its data in a shape we don't know.
            out[key] = MASK
    return out


def _is_watch_event(obj: dict[str, Any], kind: str) -> bool:
    return (
        kind in ("", "WatchEvent")
        and isinstance(obj.get("type"), str)
        and isinstance(obj.get("object"), dict)
    )


def _mask_watch_event(obj: dict[str, Any], settings: MaskingSettings) -> dict[str, Any]:
    out = _walk_dict({k: v for k, v in obj.items() if k != "object"}, settings)
    out["object"] = _mask_object(obj["object"], settings, implied_kind="")
    return out


def _mask_list(obj: dict[str, Any], kind: str, settings: MaskingSettings) -> dict[str, Any]:
    """``SecretList`` items are Secrets even without their own kind; ``List`` items use theirs."""
    item_kind = kind[: -len("List")] if kind.endswith("List") and kind != "List" else ""
    items = obj["items"]
    out = _walk_dict({k: v for k, v in obj.items() if k != "items"}, settings)
    if items is None:
        out["items"] = None
    elif isinstance(items, list):
        out["items"] = [_mask_object(item, settings, implied_kind=item_kind) for item in items]
    else:
        # Not a list of objects: we cannot tell what it holds, so it does not leave.
        out["items"] = MASK
    return out


def _mask_token_request(obj: dict[str, Any], settings: MaskingSettings) -> dict[str, Any]:
    """authentication.k8s.io TokenRequest: the issued token is in ``status.token``."""
    return _mask_nested_field(obj, "status", "token", settings)


def _mask_token_review(obj: dict[str, Any], settings: MaskingSettings) -> dict[str, Any]:
    """authentication.k8s.io TokenReview: the API server echoes the reviewed ``spec.token``."""
    return _mask_nested_field(obj, "spec", "token", settings)


def _mask_nested_field(
    obj: dict[str, Any], parent: str, field: str, settings: MaskingSettings
) -> dict[str, Any]:
    out = _walk_dict(obj, settings)
    section = out.get(parent)
    if isinstance(section, dict) and field in section:
        out[parent] = {**section, field: MASK}
    elif section is not None and not isinstance(section, dict):
        out[parent] = MASK
    return out


def _mask_config_map(obj: dict[str, Any], settings: MaskingSettings) -> dict[str, Any]:
    """Patterns on ``data`` values (a password-like key masks its whole value);
    ``binaryData`` is left untouched (opaque base64 that patterns cannot read)."""
    out = _walk_dict({k: v for k, v in obj.items() if k not in ("data", "binaryData")}, settings)
    if "data" in obj:
        data = obj["data"]
        out["data"] = (
            {key: _mask_keyed(key, value, settings) for key, value in data.items()}
            if isinstance(data, dict)
            else _walk(data, settings)
        )
    if "binaryData" in obj:
        out["binaryData"] = _copy(obj["binaryData"])
    return out


_KIND_HANDLERS: dict[str, Callable[[dict[str, Any], MaskingSettings], Any]] = {
    "TokenRequest": _mask_token_request,
    "TokenReview": _mask_token_review,
    "ConfigMap": _mask_config_map,
}


# ---------------------------------------------------------------------------------------------
# Tables

# The server-side printer's columns for Secrets (pkg/printers/internalversion/printers.go).
_SECRET_TABLE_COLUMNS = ("name", "type", "data", "age")
_SAFE_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_SAFE_SECRET_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,252}")
_SAFE_AGE = re.compile(r"(?:[0-9]+[smhdy]){1,3}|<unknown>|<invalid>")


def _mask_table(obj: dict[str, Any], settings: MaskingSettings) -> dict[str, Any]:
    """meta.k8s.io Table: row objects are masked as objects; cells of a Secret table are kept
    only when they are what the Secret printer puts there (name, type, count, age)."""
    rows = obj.get("rows")
    out = _walk_dict({k: v for k, v in obj.items() if k != "rows"}, settings)
    if rows is None:
        return out
    if not isinstance(rows, list):
        out["rows"] = MASK
        return out
    columns = obj.get("columnDefinitions")
    column_names = [
        str(c.get("name", "")).lower() if isinstance(c, dict) else ""
        for c in (columns if isinstance(columns, list) else [])
    ]
    secret_table = tuple(column_names) == _SECRET_TABLE_COLUMNS or any(
        _row_is_secret(row) for row in rows
    )
    masked_rows = []
    for row in rows:
        if not isinstance(row, dict):
            masked_rows.append(MASK if secret_table else _walk(row, settings))
            continue
        rest = {k: v for k, v in row.items() if k not in ("cells", "object")}
        masked_row = _walk_dict(rest, settings)
        if "object" in row:
            masked_row["object"] = _mask_object(
                row["object"], settings, implied_kind="Secret" if secret_table else ""
            )
        if "cells" in row:
            cells = row["cells"]
            if not isinstance(cells, list):
                masked_row["cells"] = MASK
            elif secret_table:
                masked_row["cells"] = [
                    _mask_secret_cell(column_names[i] if i < len(column_names) else "", cell)
                    for i, cell in enumerate(cells)
                ]
            else:
                masked_row["cells"] = [_walk(cell, settings) for cell in cells]
        masked_rows.append(masked_row)
    out["rows"] = masked_rows
    return out


def _row_is_secret(row: Any) -> bool:
    """A row whose object is a Secret, or metadata whose last-applied says it was one."""
    if not isinstance(row, dict) or not isinstance(row.get("object"), dict):
        return False
    row_object = row["object"]
    if row_object.get("kind") == "Secret":
        return True
    metadata = row_object.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    applied = annotations.get(LAST_APPLIED_ANNOTATION) if isinstance(annotations, dict) else None
    if not isinstance(applied, str):
        return False
    try:
        parsed = json.loads(applied)
    except ValueError:
        return False
    return isinstance(parsed, dict) and parsed.get("kind") == "Secret"


def _mask_secret_cell(column: str, cell: Any) -> Any:
    """Keep numbers, and strings shaped like the printer's name/type/age; mask the rest."""
    if cell is None or isinstance(cell, (bool, int, float)):
        return cell
    if isinstance(cell, str):
        safe = {"name": _SAFE_NAME, "type": _SAFE_SECRET_TYPE, "age": _SAFE_AGE}.get(column)
        if safe is not None and safe.fullmatch(cell):
            return cell
    return MASK


# ---------------------------------------------------------------------------------------------
# Generic walk


def _walk(value: Any, settings: MaskingSettings) -> Any:
    """Mask a value inside an object: patterns on strings, embedded objects by their kind."""
    if isinstance(value, str):
        return mask_text(value, settings)
    if isinstance(value, list):
        return [_walk(item, settings) for item in value]
    if isinstance(value, dict):
        if _is_embedded_object(value):
            return _mask_object(value, settings, implied_kind="")
        return _walk_dict(value, settings)
    return value


def _is_embedded_object(value: dict[str, Any]) -> bool:
    """A whole object nested in another (a manifest in a CR, a Secret in a List in a CR).

    References (ownerReferences, involvedObject) carry kind and apiVersion too but no metadata
    or data; they are ordinary values.
    """
    kind = value.get("kind")
    if kind == "Secret":
        return any(key in value for key in ("metadata", "data", "stringData"))
    if not isinstance(kind, str) or not isinstance(value.get("apiVersion"), str):
        return False
    return "metadata" in value or "items" in value or "rows" in value


def _walk_dict(obj: dict[str, Any], settings: MaskingSettings) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key == LAST_APPLIED_ANNOTATION and isinstance(value, str):
            out[key] = _mask_last_applied(value, settings, implied_kind="")
        elif key == "env" and isinstance(value, list):
            out[key] = [_mask_env_var(var, settings) for var in value]
        else:
            out[key] = _walk(value, settings)
    return out


def _mask_metadata(
    metadata: dict[str, Any], settings: MaskingSettings, applied_kind: str
) -> dict[str, Any]:
    """Object metadata whose last-applied annotation is masked as ``applied_kind`` whatever
    kind it claims, so a Secret's annotation cannot pass as a harmless object."""
    out = _walk_dict(metadata, settings)
    annotations = metadata.get("annotations")
    if isinstance(annotations, dict) and isinstance(annotations.get(LAST_APPLIED_ANNOTATION), str):
        out["annotations"] = {
            **out["annotations"],
            LAST_APPLIED_ANNOTATION: _mask_last_applied(
                annotations[LAST_APPLIED_ANNOTATION], settings, implied_kind=applied_kind
            ),
        }
    return out


def _mask_env_var(var: Any, settings: MaskingSettings) -> Any:
    """Container env ``{name, value}``: a password-like name masks the whole value."""
    if not isinstance(var, dict):
        return _walk(var, settings)
    out = _walk_dict(var, settings)
    name, value = var.get("name"), var.get("value")
    if isinstance(name, str) and isinstance(value, str):
        out["value"] = _mask_keyed(name, value, settings)
    return out


def _mask_keyed(key: str, value: Any, settings: MaskingSettings) -> Any:
    """Mask a value by its key (``DB_PASSWORD``) when a keyed pattern is on, else by content."""
    if not isinstance(value, str):
        return _walk(value, settings)
    if value:
        for name in settings.patterns:
            sensitive_key = _PATTERNS[name].sensitive_key
            if sensitive_key is not None and sensitive_key.search(key):
                return MASK
    return mask_text(value, settings)


def _mask_last_applied(value: str, settings: MaskingSettings, implied_kind: str) -> str:
    """kubectl's copy of the applied manifest: masked like the object it describes.

    It holds a Secret's data in the clear, on every kind of read (including Table rows with
    only metadata), so an unparseable one is withheld entirely.
    """
    try:
        parsed = json.loads(value, parse_constant=_reject_constant)
    except ValueError:
        return MASK
    if not isinstance(parsed, dict):
        return MASK
    masked = _mask_object(parsed, settings, implied_kind=implied_kind)
    if not isinstance(masked, dict):
        return MASK
    return _dumps(masked) + ("\n" if value.endswith("\n") else "")


# ---------------------------------------------------------------------------------------------
# Helpers


def _mask_secret_groups(match: re.Match[str]) -> str:
    """Replace the participating ``secret*`` groups of a match, keep the rest of it."""
    text = match.group(0)
    base = match.start()
    spans = sorted(
        match.span(group)
        for group in match.re.groupindex
        if group.startswith("secret") and match.start(group) != -1
    )
    pieces = []
    cursor = 0
    for start, end in spans:
        pieces.append(text[cursor : start - base])
        pieces.append(MASK)
        cursor = end - base
    pieces.append(text[cursor:])
    return "".join(pieces)


def _reject_constant(name: str) -> Any:
    # NaN/Infinity are not JSON; Go clients would reject them, so treat the input as malformed.
    raise ValueError(f"non-standard JSON constant {name}")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
