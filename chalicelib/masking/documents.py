"""Masking of decoded Kubernetes JSON: by what each object is, then by key, then by content.

Objects are masked by their real kind: the kind the request resolved to (``resource_kind``,
passed by the gateway, which knows it asked for ``secrets``), the kind the envelope implies
(a ``SecretList``'s items, a Secret Table's rows), or the object's own ``kind``. A claim made
inside an object (its ``last-applied-configuration`` annotation) can upgrade what an object is
treated as, never downgrade it: a Secret read as ``PartialObjectMetadata`` whose annotation
claims ``"kind":"ConfigMap"`` is still masked as a Secret.

Secret data masking is always on. The pattern families (``PATTERN_NAMES``) mask
credential-shaped text and values under credential-named keys in every other string. Only the
strings holding a trigger word are scanned (see ``scanner``), which keeps a multi-megabyte list
close to the cost of decoding and encoding it.

Anything that cannot be understood is withheld rather than passed through.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
from collections.abc import Callable
from typing import Any

from chalicelib.masking.jsoncodec import dumps, dumps_text, loads
from chalicelib.masking.scanner import MASK, Scanner, scanner_for
from chalicelib.masking.settings import MaskingSettings
from chalicelib.masking.vocabulary import is_credential_key

# Every Secret data value becomes this one valid base64 string, so clients still decode the
# object and nothing about the original value (not even its length) is revealed.
MASKED_DATA_VALUE = base64.b64encode(MASK.encode("ascii")).decode("ascii")
LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"

_AWS_SECRET_KEY_NAME = re.compile(
    r"(?i:aws[_\-. ]?secret(?:[_\-. ]?access)?[_\-. ]?key|secret[_\-. ]?access[_\-. ]?key)",
    re.ASCII,
)
# Kinds that describe how an answer is packaged, not what the object in it is.
_ENVELOPE_KINDS = frozenset({"", "PartialObjectMetadata", "WatchEvent"})


class _AllStrings:
    """Stands for "every string is suspect" where no trigger search was made: each string is
    checked on its own, once per answer."""

    def __init__(self, scanner: Scanner, verdicts: dict[str, bool]) -> None:
        self._scanner = scanner
        self._verdicts = verdicts

    def __contains__(self, text: object) -> bool:
        verdict = self._verdicts.get(text)  # type: ignore[call-overload]
        if verdict is None:
            if not isinstance(text, str):
                return False
            verdict = self._verdicts[text] = self._scanner.has_trigger(text)
        return verdict


class _Context:
    """One masking run: the settings, their scanner, and the document's suspect strings."""

    __slots__ = ("settings", "scanner", "suspects", "string_keys", "_masked", "_verdicts")

    def __init__(
        self,
        settings: MaskingSettings,
        scanner: Scanner,
        suspects: set[str] | None,
        verdicts: dict[str, bool] | None = None,
    ) -> None:
        self.settings = settings
        self.scanner = scanner
        # Shared by the contexts of one answer (its embedded annotations), and no longer.
        self._verdicts: dict[str, bool] = {} if verdicts is None else verdicts
        # The strings of the document that may hold a credential (hold a trigger word).
        self.suspects: set[str] | _AllStrings = (
            suspects if suspects is not None else _AllStrings(scanner, self._verdicts)
        )
        self._masked: dict[str, str] = {}
        # Key -> whether a string under it is looked at for its key alone (the last-applied
        # annotation, a credential-named key); most keys repeat in every object of an answer.
        self.string_keys: dict[str, bool] = {}

    def key_decides(self, key: str) -> bool:
        decides = self.string_keys.get(key)
        if decides is None:
            decides = self.string_keys[key] = key == LAST_APPLIED_ANNOTATION or _keyed_sensitive(
                key, self.settings.families
            )
        return decides

    def text(self, value: str) -> str:
        """Pattern masking of one string value found in a document."""
        if value not in self.suspects:
            return value
        masked = self._masked.get(value)
        if masked is None:
            masked = self.scanner.mask(value)
            self._masked[value] = value if masked == value else masked
        return self._masked[value]

    def for_inner(self, raw: str, small: bool) -> _Context:
        """The context for a JSON document embedded in a string (an annotation); ``small``:
        few of its strings will be looked at, so check them one by one."""
        if small:
            return _Context(self.settings, self.scanner, None, self._verdicts)
        try:
            suspects = self.scanner.suspects_in_json(raw.encode("utf-8", "surrogatepass"))
        except ValueError:
            return _Context(self.settings, self.scanner, None, self._verdicts)
        return _Context(self.settings, self.scanner, suspects, self._verdicts)


def make_context(
    settings: MaskingSettings, raw: bytes | None, doc: Any, resource_kind: str = ""
) -> _Context:
    """The context for masking ``doc`` (decoded from ``raw`` when given).

    The strings to scan are found by one trigger search over the serialized document, except
    for Secrets: all but their metadata is masked whole, so each metadata string is checked
    on its own instead of searching megabytes of data that will be replaced anyway.
    """
    scanner = scanner_for(settings.families)
    if resource_kind == "Secret":
        return _Context(settings, scanner, None)
    try:
        suspects = scanner.suspects_in_json(raw if raw is not None else dumps(doc))
    except ValueError:
        suspects = None
    return _Context(settings, scanner, suspects)


def mask_value(doc: Any, ctx: _Context, resource_kind: str) -> Any:
    """Mask a decoded response whose objects are of ``resource_kind`` ("" when unknown)."""
    return _mask_object(doc, ctx, implied_kind=resource_kind, top=True)


# ---------------------------------------------------------------------------------------------
# Objects


def _is_secret_kind(kind: str) -> bool:
    return kind.lower() == "secret"


def _mask_object(obj: Any, ctx: _Context, implied_kind: str, top: bool = False) -> Any:
    """Mask a value found where a whole Kubernetes object is expected."""
    if (
        not top
        and implied_kind == "Secret"
        and type(obj) is dict
        and obj.get("kind") in (None, "Secret")
    ):
        return _mask_secret(obj, ctx)  # the items of a SecretList: the common case, first
    if isinstance(obj, list):
        return [_mask_object(item, ctx, implied_kind) for item in obj]
    if not isinstance(obj, dict):
        # Something that should be a Secret but is not even an object is withheld.
        if _is_secret_kind(implied_kind) and obj is not None:
            return MASK
        return _walk(obj, ctx)
    raw_kind = obj.get("kind")
    kind = raw_kind if isinstance(raw_kind, str) else ""
    if kind == "Status":
        return _walk_dict(obj, ctx, owner_kind="Status")
    if _is_watch_event(obj, kind):
        return _mask_watch_event(obj, ctx, implied_kind)
    if kind == "Table":
        return _mask_table(obj, ctx, implied_kind)
    if (not kind or kind.endswith("List")) and "items" in obj:
        return _mask_list(obj, kind, ctx, implied_kind)
    # The real kind: what the request and envelope say, unless the object says Secret.
    real_kind = kind if kind not in _ENVELOPE_KINDS else ""
    if _is_secret_kind(implied_kind) or _is_secret_kind(kind):
        real_kind = "Secret"
    elif implied_kind and (not real_kind or top):
        real_kind = implied_kind
    if real_kind == "Secret" or (not real_kind and not kind and _looks_like_secret(obj)):
        return _mask_secret(obj, ctx)
    handler = _KIND_HANDLERS.get(real_kind)
    if handler is not None:
        return handler(obj, ctx)
    # Workloads, PartialObjectMetadata of anything but Secrets, and everything else: patterns
    # on every string, env values by name, last-applied annotations masked as ``real_kind``.
    return _walk_dict(obj, ctx, owner_kind=real_kind or "?")


def _looks_like_secret(obj: dict[str, Any]) -> bool:
    """A kind-less object with Secret fields is treated as a Secret (fail closed)."""
    return "data" in obj or "stringData" in obj


_SECRET_FIELDS_KEPT = frozenset({"apiVersion", "kind", "type", "immutable"})


def _mask_secret(obj: dict[str, Any], ctx: _Context) -> Any:
    """Every data value becomes ``MASKED_DATA_VALUE``, every stringData value ``MASK``."""
    for field in ("data", "stringData", "metadata"):
        value = obj.get(field)
        if value is not None and type(value) is not dict:
            # Not the shape we know how to mask: withhold it all.
            return MASK
    out: dict[str, Any] = {}
    for key, value in obj.items():
        if key == "data" and value is not None:
            out[key] = dict.fromkeys(value, MASKED_DATA_VALUE)
        elif key == "stringData" and value is not None:
            out[key] = dict.fromkeys(value, MASK)
        elif key == "metadata" and value is not None:
            out[key] = _walk_dict(value, ctx, owner_kind="Secret")
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


def _mask_watch_event(obj: dict[str, Any], ctx: _Context, implied_kind: str) -> dict[str, Any]:
    out = _walk_dict({k: v for k, v in obj.items() if k != "object"}, ctx, owner_kind="")
    out["object"] = _mask_object(obj["object"], ctx, implied_kind=implied_kind, top=True)
    return out


def _mask_list(obj: dict[str, Any], kind: str, ctx: _Context, implied_kind: str) -> dict[str, Any]:
    item_kind = list_item_kind(kind, implied_kind)
    items = obj["items"]
    out = mask_list_fields({k: v for k, v in obj.items() if k != "items"}, ctx)
    if items is None:
        out["items"] = None
    elif isinstance(items, list):
        out["items"] = [mask_list_item(item, ctx, item_kind) for item in items]
    else:
        # Not a list of objects: we cannot tell what it holds, so it does not leave.
        out["items"] = MASK
    return out


def is_list_answer(fields: dict[str, Any]) -> bool:
    """Whether a top-level answer with these fields (besides ``items``) is masked as a list
    of objects: ``*List`` or kind-less, and not a watch event, a Status or a Table."""
    raw_kind = fields.get("kind")
    kind = raw_kind if isinstance(raw_kind, str) else ""
    if kind.endswith("List"):
        return True
    return not kind and not _is_watch_event(fields, kind)


def list_item_kind(kind: str, implied_kind: str) -> str:
    """The kind a list's items are masked as. ``SecretList`` items are Secrets even without
    their own kind; ``List`` items use theirs; the items of a list the request resolved to a
    kind (``PartialObjectMetadataList`` of ``secrets``) are of that kind."""
    item_kind = kind[: -len("List")] if kind.endswith("List") and kind != "List" else ""
    if item_kind == "PartialObjectMetadata":
        item_kind = ""
    if implied_kind and not _is_secret_kind(item_kind):
        item_kind = implied_kind
    return item_kind


def mask_list_fields(fields: dict[str, Any], ctx: _Context) -> dict[str, Any]:
    """A list's own fields (kind, metadata), ``items`` left out."""
    return _walk_dict(fields, ctx, owner_kind="")


def mask_list_item(item: Any, ctx: _Context, item_kind: str) -> Any:
    """One item of a list whose items are of ``item_kind`` (``list_item_kind``)."""
    return _mask_object(item, ctx, implied_kind=item_kind)


def _mask_token_request(obj: dict[str, Any], ctx: _Context) -> dict[str, Any]:
    """authentication.k8s.io TokenRequest: the issued token is in ``status.token``."""
    return _mask_nested_field(obj, "status", "token", ctx, "TokenRequest")


def _mask_token_review(obj: dict[str, Any], ctx: _Context) -> dict[str, Any]:
    """authentication.k8s.io TokenReview: the API server echoes the reviewed ``spec.token``."""
    return _mask_nested_field(obj, "spec", "token", ctx, "TokenReview")


def _mask_nested_field(
    obj: dict[str, Any], parent: str, field: str, ctx: _Context, kind: str
) -> dict[str, Any]:
    out = dict(_walk_dict(obj, ctx, owner_kind=kind))
    section = out.get(parent)
    if isinstance(section, dict) and field in section:
        out[parent] = {**section, field: MASK}
    elif section is not None and not isinstance(section, dict):
        out[parent] = MASK
    return out


def _mask_config_map(obj: dict[str, Any], ctx: _Context) -> dict[str, Any]:
    """Patterns on ``data`` values (a credential-named key masks its whole value);
    ``binaryData`` values are decoded and scanned the same way, and re-encoded."""
    rest = {k: v for k, v in obj.items() if k not in ("data", "binaryData")}
    out = _walk_dict(rest, ctx, owner_kind="ConfigMap")
    if "data" in obj:
        data = obj["data"]
        out["data"] = (
            {key: _mask_keyed(key, value, ctx) for key, value in data.items()}
            if isinstance(data, dict)
            else _walk(data, ctx)
        )
    if "binaryData" in obj:
        binary = obj["binaryData"]
        out["binaryData"] = (
            {key: _mask_binary(key, value, ctx) for key, value in binary.items()}
            if isinstance(binary, dict)
            else (None if binary is None else MASK)
        )
    return out


def _mask_binary(key: str, value: Any, ctx: _Context) -> Any:
    """A ``binaryData`` value: decoded, masked as text, re-encoded; what is not text (and so
    cannot be scanned) is withheld unless the policy says to keep it."""
    if not isinstance(value, str):
        return MASKED_DATA_VALUE
    try:
        text = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return value if ctx.settings.unscannable_binary == "keep" else MASKED_DATA_VALUE
    if _keyed_sensitive(key, ctx.settings.families) and text:
        return MASKED_DATA_VALUE
    masked = ctx.scanner.mask(text)
    if masked == text:
        return value
    return base64.b64encode(masked.encode("utf-8")).decode("ascii")


_KIND_HANDLERS: dict[str, Callable[[dict[str, Any], _Context], Any]] = {
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


def _mask_table(obj: dict[str, Any], ctx: _Context, implied_kind: str) -> dict[str, Any]:
    """meta.k8s.io Table: row objects are masked as objects of the table's kind; cells of a
    Secret table are kept only when they are what the Secret printer puts there."""
    rows = obj.get("rows")
    out = _walk_dict({k: v for k, v in obj.items() if k != "rows"}, ctx, owner_kind="")
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
    secret_table = (
        _is_secret_kind(implied_kind)
        or tuple(column_names) == _SECRET_TABLE_COLUMNS
        or any(_row_is_secret(row) for row in rows)
    )
    row_kind = "Secret" if secret_table else implied_kind
    masked_rows = []
    for row in rows:
        if not isinstance(row, dict):
            masked_rows.append(MASK if secret_table else _walk(row, ctx))
            continue
        rest = {k: v for k, v in row.items() if k not in ("cells", "object")}
        masked_row = _walk_dict(rest, ctx, owner_kind="")
        if "object" in row:
            masked_row["object"] = _mask_object(row["object"], ctx, implied_kind=row_kind)
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
                masked_row["cells"] = [_walk(cell, ctx) for cell in cells]
        masked_rows.append(masked_row)
    out["rows"] = masked_rows
    return out


def _row_is_secret(row: Any) -> bool:
    """A row whose object is a Secret, or metadata whose last-applied says it was one."""
    if not isinstance(row, dict) or not isinstance(row.get("object"), dict):
        return False
    row_object = row["object"]
    kind = row_object.get("kind")
    if isinstance(kind, str) and _is_secret_kind(kind):
        return True
    metadata = row_object.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    applied = annotations.get(LAST_APPLIED_ANNOTATION) if isinstance(annotations, dict) else None
    if not isinstance(applied, str):
        return False
    try:
        parsed = loads(applied)
    except ValueError:
        return False
    claimed = parsed.get("kind") if isinstance(parsed, dict) else None
    return isinstance(claimed, str) and _is_secret_kind(claimed)


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
# Generic walk. Containers are rebuilt only where something changed; unchanged parts of the
# input are shared with the output (neither is ever modified in place).


def _walk(value: Any, ctx: _Context) -> Any:
    """Mask a value inside an object: patterns on strings, embedded objects by their kind."""
    if type(value) is str:
        return ctx.text(value)
    if type(value) is list:
        return _walk_list(value, ctx)
    if type(value) is dict:
        if "kind" in value and _is_embedded_object(value):
            return _mask_object(value, ctx, implied_kind="")
        return _walk_dict(value, ctx, owner_kind="")
    return value


def _walk_list(items: list[Any], ctx: _Context) -> list[Any]:
    # ``_walk`` of each item, inlined: lists of containers, ports and conditions are long.
    suspects = ctx.suspects
    changed: list[Any] | None = None
    for index, item in enumerate(items):
        kind_of_item = type(item)
        if kind_of_item is dict:
            if "kind" in item and _is_embedded_object(item):
                masked: Any = _mask_object(item, ctx, implied_kind="")
            else:
                masked = _walk_dict(item, ctx, owner_kind="")
        elif kind_of_item is str:
            if item not in suspects:
                continue
            masked = ctx.text(item)
        elif kind_of_item is list:
            masked = _walk_list(item, ctx)
        else:
            continue
        if masked is not item:
            if changed is None:
                changed = list(items)
            changed[index] = masked
    return items if changed is None else changed


def _is_embedded_object(value: dict[str, Any]) -> bool:
    """A whole object nested in another (a manifest in a CR, a Secret in a List in a CR).

    References (ownerReferences, involvedObject) carry kind and apiVersion too but no metadata
    or data; they are ordinary values.
    """
    kind = value.get("kind")
    if kind is None:
        return False
    if isinstance(kind, str) and _is_secret_kind(kind):
        return any(key in value for key in ("metadata", "data", "stringData"))
    if not isinstance(kind, str) or not isinstance(value.get("apiVersion"), str):
        return False
    return "metadata" in value or "items" in value or "rows" in value


def _walk_dict(obj: dict[str, Any], ctx: _Context, owner_kind: str) -> dict[str, Any]:
    """Walk an object's fields; ``owner_kind`` is the real kind of the object whose
    last-applied annotation may appear inside ("" for none known, "?" for unknown)."""
    suspects = ctx.suspects
    string_keys = ctx.string_keys
    changed: dict[str, Any] | None = None
    for key, value in obj.items():
        kind_of_value = type(value)
        if kind_of_value is str:
            key_decides = string_keys.get(key)
            if key_decides is None:
                key_decides = ctx.key_decides(key)
            if not key_decides:  # the usual key: only the value's content can matter
                if value not in suspects:
                    continue
                masked: Any = ctx.text(value)
            elif key == LAST_APPLIED_ANNOTATION:
                masked = _mask_last_applied(value, ctx, owner_kind)
            elif value:
                masked = MASK  # a credential-named key: its value whole
            else:
                continue  # an empty value hides nothing
        elif not value:
            continue  # an empty dict or list (or a number or a falsy scalar): nothing to mask
        elif kind_of_value is dict:
            if key in _OWNED_FIELDS:
                masked = _walk_dict(value, ctx, owner_kind)
            elif "kind" in value and _is_embedded_object(value):
                masked = _mask_object(value, ctx, implied_kind="")
            else:
                masked = _walk_dict(value, ctx, "")
        elif kind_of_value is list:
            masked = (
                _walk_list_with(value, ctx, _mask_env_var)
                if key == "env"
                else _walk_list(value, ctx)
            )
        else:
            continue
        if masked is not value:
            if changed is None:
                changed = {}
            changed[key] = masked
    if changed is None:
        return obj
    out = obj.copy()  # keeps the key order; only the changed values are replaced
    out.update(changed)
    return out


# Where an object's own last-applied annotation lives.
_OWNED_FIELDS = frozenset({"metadata", "annotations"})


def _walk_list_with(
    items: list[Any], ctx: _Context, mask_item: Callable[[Any, _Context], Any]
) -> list[Any]:
    out = [mask_item(item, ctx) for item in items]
    return items if all(a is b for a, b in zip(out, items, strict=True)) else out


def _mask_env_var(var: Any, ctx: _Context) -> Any:
    """Container env ``{name, value}``: a credential-like name masks the whole value."""
    if not isinstance(var, dict):
        return _walk(var, ctx)
    out = _walk_dict(var, ctx, owner_kind="")
    name, value = var.get("name"), var.get("value")
    if isinstance(name, str) and isinstance(value, str):
        masked = _mask_keyed(name, value, ctx)
        if masked is not value:
            out = {**out, "value": masked}
    return out


@functools.lru_cache(maxsize=4096)
def _keyed_sensitive(key: str, families: frozenset[str]) -> bool:
    """Whether the value under ``key`` is masked whole, by its key, for these families."""
    if "password-assignment" in families and is_credential_key(key):
        return True
    return "aws-secret-key" in families and _AWS_SECRET_KEY_NAME.search(key) is not None


def _mask_keyed(key: str, value: Any, ctx: _Context) -> Any:
    """Mask a value by its key (``DB_PASSWORD``) when a keyed family is on, else by content."""
    if not isinstance(value, str):
        return _walk(value, ctx)
    if value and _keyed_sensitive(key, ctx.settings.families):
        return MASK
    return ctx.text(value)


def _mask_last_applied(value: str, ctx: _Context, owner_kind: str) -> str:
    """kubectl's copy of the applied manifest, masked as the object it belongs to.

    ``owner_kind`` is the real kind of that object: a Secret's annotation is masked as a
    Secret whatever kind it claims. When the owner's kind is unknown ("?" or "": metadata-only
    reads nothing resolved), an annotation that claims a kind other than Secret but carries
    ``data`` is masked as a Secret anyway. It holds a Secret's data in the clear, so an
    unparseable one is withheld entirely.
    """
    try:
        parsed = loads(value)
    except ValueError:
        return MASK
    if not isinstance(parsed, dict):
        return MASK
    raw_claimed = parsed.get("kind")
    claimed = raw_claimed if isinstance(raw_claimed, str) else ""
    if owner_kind in ("", "?"):
        unknown_with_data = not _is_secret_kind(claimed) and any(
            key in parsed for key in ("data", "stringData", "binaryData")
        )
        as_kind = "Secret" if unknown_with_data or _is_secret_kind(claimed) else ""
    elif owner_kind == "Status":
        as_kind = ""
    else:
        as_kind = "Secret" if _is_secret_kind(claimed) else owner_kind
    inner = ctx.for_inner(value, small=_is_secret_kind(as_kind or claimed))
    if as_kind and not _is_secret_kind(claimed) and as_kind != claimed:
        # Mask as the real kind; keep the claimed kind in the copy shown.
        masked = _mask_object({**parsed, "kind": as_kind}, inner, implied_kind=as_kind)
        if isinstance(masked, dict):
            masked = (
                {**masked, "kind": parsed.get("kind")}
                if "kind" in parsed
                else {k: v for k, v in masked.items() if k != "kind"}
            )
    else:
        masked = _mask_object(parsed, inner, implied_kind=as_kind)
    if not isinstance(masked, dict):
        return MASK
    if masked is parsed:
        return value
    return dumps_text(masked) + ("\n" if value.endswith("\n") else "")
