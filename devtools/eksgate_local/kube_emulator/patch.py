"""The three PATCH flavours kube-apiserver accepts for built-in types.

* ``application/merge-patch+json`` — RFC 7386 JSON merge patch.
* ``application/json-patch+json`` — RFC 6902 JSON patch.
* ``application/strategic-merge-patch+json`` — Kubernetes strategic merge patch, good enough
  for ``kubectl apply`` and ``kubectl edit``: lists with a patch merge key (containers by
  ``name``, container ports by ``containerPort``, volume mounts by ``mountPath``…) are merged
  element-wise, ``$patch: replace|delete|merge``, ``$retainKeys``,
  ``$deleteFromPrimitiveList/…`` and ``$setElementOrder/…`` directives are honoured.
  Merge keys are looked up by field name rather than from the OpenAPI schema, which is
  accurate for the built-in kinds the emulator stores.

Server-side apply (``application/apply-patch+yaml``) is not implemented; the server answers
it with 415 as the issue allows.
"""

from __future__ import annotations

import copy
from typing import Any

from .errors import ApiError, bad_request

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
SUPPORTED_PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH)


# ----- JSON merge patch (RFC 7386) ----------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 merge patch; returns a new value, ``target`` is not modified."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# ----- JSON patch (RFC 6902) ----------------------------------------------------------------


def _unprocessable(message: str) -> ApiError:
    # kube-apiserver reports a JSON patch that cannot be applied as 422 with a generic reason.
    return ApiError(422, "Invalid", message)


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"invalid JSON pointer {path!r}: must start with '/'")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _parent(doc: Any, parts: list[str], path: str) -> Any:
    cur = doc
    for part in parts[:-1]:
        if isinstance(cur, dict):
            if part not in cur:
                raise _unprocessable(f"jsonpatch: path {path!r} not found: missing key {part!r}")
            cur = cur[part]
        elif isinstance(cur, list):
            cur = cur[_index(cur, part, path, allow_end=False)]
        else:
            raise _unprocessable(f"jsonpatch: path {path!r} traverses a scalar")
    return cur


def _index(seq: list[Any], part: str, path: str, *, allow_end: bool) -> int:
    if part == "-" and allow_end:
        return len(seq)
    if not part.isdigit() or (len(part) > 1 and part.startswith("0")):
        raise _unprocessable(f"jsonpatch: invalid array index {part!r} in {path!r}")
    idx = int(part)
    limit = len(seq) if allow_end else len(seq) - 1
    if idx > limit:
        raise _unprocessable(f"jsonpatch: array index {idx} out of bounds in {path!r}")
    return idx


def _get(doc: Any, path: str) -> Any:
    cur = doc
    for part in _pointer(path):
        if isinstance(cur, dict):
            if part not in cur:
                raise _unprocessable(f"jsonpatch: path {path!r} not found")
            cur = cur[part]
        elif isinstance(cur, list):
            cur = cur[_index(cur, part, path, allow_end=False)]
        else:
            raise _unprocessable(f"jsonpatch: path {path!r} not found")
    return cur


def _add(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, path, allow_end=True), value)
    else:
        raise _unprocessable(f"jsonpatch: cannot add at {path!r}")
    return doc


def _remove(doc: Any, path: str) -> tuple[Any, Any]:
    parts = _pointer(path)
    if not parts:
        raise _unprocessable("jsonpatch: cannot remove the whole document")
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise _unprocessable(
                f"jsonpatch: remove operation does not apply: doc is missing path: {path!r}"
            )
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, last, path, allow_end=False))
    raise _unprocessable(f"jsonpatch: cannot remove {path!r}")


def json_patch(target: Any, operations: Any) -> Any:
    """Apply an RFC 6902 patch; returns a new document, ``target`` is not modified."""
    if not isinstance(operations, list):
        raise bad_request("json patch must be a JSON array of operations")
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request(f"invalid json patch operation: {op!r}")
        kind, path = op["op"], op["path"]
        if not isinstance(path, str):
            raise bad_request(f"invalid json patch path: {path!r}")
        if kind == "add":
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            doc, _ = _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)  # must exist
            if _pointer(path):
                doc, _ = _remove(doc, path)
            doc = _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind in ("move", "copy"):
            source = op.get("from")
            if not isinstance(source, str):
                raise bad_request(f"json patch {kind} requires 'from'")
            value = copy.deepcopy(_get(doc, source))
            if kind == "move":
                doc, _ = _remove(doc, source)
            doc = _add(doc, path, value)
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise _unprocessable(f"jsonpatch: test operation for path {path!r} failed")
        else:
            raise bad_request(f"Unexpected kind: {kind}")
    return doc


# ----- strategic merge patch ---------------------------------------------------------------

# Patch merge keys of the built-in types, by list field name (k8s.io/api struct tags).
_MERGE_KEYS: dict[str, str] = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "hostAliases": "ip",
    "conditions": "type",
    "ownerReferences": "uid",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
    "schedulingGates": "name",
    "secrets": "name",  # ServiceAccount.secrets
    "readinessGates": "conditionType",
}
# Lists of scalars merged as sets (patchStrategy "merge" without a key).
_MERGED_PRIMITIVE_LISTS = frozenset({"finalizers"})


def _merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":
        # Container ports merge on containerPort, Service ports on port.
        sample = next((i for i in items if isinstance(i, dict)), None)
        if sample is not None and "containerPort" in sample:
            return "containerPort"
        if sample is not None and "port" in sample:
            return "port"
        return None
    return _MERGE_KEYS.get(field)


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Apply a strategic merge patch to ``target``; returns a new value."""
    if not isinstance(patch, dict):
        raise bad_request("strategic merge patch must be a JSON object")
    return _smp_map(copy.deepcopy(target) if isinstance(target, dict) else {}, patch)


def _smp_map(original: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any] | None:
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive not in (None, "merge"):
        raise bad_request(f"Unknown patch type: {directive}")

    result = original
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$setElementOrder/") or key.startswith("$deleteFromPrimitiveList/"):
            continue
        if value is None:
            result.pop(key, None)
            continue
        current = result.get(key)
        if isinstance(value, dict):
            merged = _smp_map(current if isinstance(current, dict) else {}, value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _smp_list(key, current if isinstance(current, list) else None, value)
        else:
            result[key] = copy.deepcopy(value)

    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list) and isinstance(value, list):
                result[field] = [item for item in result[field] if item not in value]
    for key, order in patch.items():
        if key.startswith("$setElementOrder/") and isinstance(order, list):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = _apply_order(field, result[field], order)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _smp_list(field: str, original: list[Any] | None, patch: list[Any]) -> list[Any]:
    original = copy.deepcopy(original) if original is not None else []
    # A list-level "$patch: replace" element replaces the whole list.
    if any(isinstance(i, dict) and i.get("$patch") == "replace" and len(i) == 1 for i in patch):
        return [
            copy.deepcopy(i)
            for i in patch
            if not (isinstance(i, dict) and i.get("$patch") == "replace")
        ]

    if field in _MERGED_PRIMITIVE_LISTS and all(not isinstance(i, (dict, list)) for i in patch):
        merged = list(original)
        for item in patch:
            if item not in merged:
                merged.append(item)
        return merged

    key = _merge_key(field, patch + original)
    if key is None or not all(isinstance(i, dict) for i in patch):
        # No merge strategy for this list: the patch value replaces it, as for atomic lists.
        return copy.deepcopy(patch)

    result = list(original)
    for item in patch:
        if key not in item:
            raise bad_request(f"map: {item!r} does not contain declared merge key: {key}")
        idx = next(
            (
                i
                for i, cur in enumerate(result)
                if isinstance(cur, dict) and cur.get(key) == item[key]
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if idx is not None:
                result.pop(idx)
            continue
        if idx is None:
            added = _smp_map({}, {k: v for k, v in item.items() if k != "$patch"})
            if added is not None:
                result.append(added)
        else:
            updated = _smp_map(result[idx], item)
            if updated is None:
                result.pop(idx)
            else:
                result[idx] = updated
    return result


def _apply_order(field: str, items: list[Any], order: list[Any]) -> list[Any]:
    """Reorder ``items`` as ``$setElementOrder`` says; unlisted items keep their order after."""
    if not order:
        return items
    if all(not isinstance(o, dict) for o in order):
        ranked = {value: i for i, value in enumerate(order)}
        return (
            sorted(items, key=lambda v: ranked.get(v, len(ranked)))
            if all(not isinstance(i, (dict, list)) for i in items)
            else items
        )
    key = _merge_key(field, order + items)
    if key is None:
        return items
    ranked = {o.get(key): i for i, o in enumerate(order) if isinstance(o, dict)}
    return sorted(
        items,
        key=lambda item: (
            ranked.get(item.get(key), len(ranked)) if isinstance(item, dict) else len(ranked)
        ),
    )


def apply_patch(content_type: str, target: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Dispatch on the PATCH ``Content-Type`` (parameters already stripped)."""
    if content_type == MERGE_PATCH:
        if not isinstance(patch, dict):
            raise bad_request("merge patch must be a JSON object")
        result = merge_patch(target, patch)
    elif content_type == JSON_PATCH:
        result = json_patch(target, patch)
    elif content_type == STRATEGIC_MERGE_PATCH:
        result = strategic_merge_patch(target, patch)
    else:
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{', '.join(SUPPORTED_PATCH_TYPES)}",
        )
    if not isinstance(result, dict):
        raise _unprocessable("the patch did not produce an object")
    return result
