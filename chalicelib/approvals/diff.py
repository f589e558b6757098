"""What a change would do to an object, as a short unified diff for the approver.

Pure. Callers pass objects that are already masked (``masking.mask_document``): the diff goes
into Slack and the approvals table, and must never carry a Secret value. Fields the API server
maintains (managed fields, resource version, uid, timestamps, generation, status) are dropped
first, so the approver sees only what the requester asked to change.
"""

from __future__ import annotations

import copy
import difflib
from typing import Any

import yaml

_NOISY_METADATA = (
    "managedFields",
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "selfLink",
)
# kubectl's copy of the whole previous object: masked already, but it repeats the object and
# would push the real change out of a bounded message.
_NOISY_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)
NO_CHANGES = "(no changes)"


def object_diff(
    current: dict[str, Any] | None, proposed: dict[str, Any], *, limit: int = 2800
) -> str:
    """Unified diff from ``current`` (None for a new object) to ``proposed``, at most ``limit``
    characters; a cut diff ends with a ``… N more lines`` note.
    """
    before = _render(current) if current is not None else []
    after = _render(proposed)
    lines = list(
        difflib.unified_diff(
            before,
            after,
            fromfile="current" if current is not None else "(new object)",
            tofile="proposed",
            lineterm="",
            n=3,
        )
    )
    if not lines:
        return NO_CHANGES
    return truncate_lines(lines, limit)


def truncate_lines(lines: list[str], limit: int) -> str:
    """``lines`` joined by newlines, cut at a line boundary to fit ``limit`` with a note."""
    text = "\n".join(lines)
    if len(text) <= limit:
        return text
    kept: list[str] = []
    size = 0
    for index, line in enumerate(lines):
        note = f"… {len(lines) - index} more lines"
        if size + len(line) + 1 + len(note) > limit:
            break
        kept.append(line)
        size += len(line) + 1
    note = f"… {len(lines) - len(kept)} more lines"
    if not kept:
        # A single line longer than the limit: show its start rather than nothing.
        return (lines[0][: max(0, limit - len(note) - 1)] + "\n" + note)[:limit]
    return "\n".join(kept) + "\n" + note


def _render(obj: dict[str, Any]) -> list[str]:
    cleaned = _without_noise(obj)
    text: str = yaml.safe_dump(
        cleaned, sort_keys=True, default_flow_style=False, allow_unicode=True, width=120
    )
    return text.splitlines()


def _without_noise(obj: dict[str, Any]) -> dict[str, Any]:
    cleaned = copy.deepcopy(obj) if isinstance(obj, dict) else {"value": obj}
    cleaned.pop("status", None)
    metadata = cleaned.get("metadata")
    if isinstance(metadata, dict):
        for key in _NOISY_METADATA:
            metadata.pop(key, None)
        annotations = metadata.get("annotations")
        if isinstance(annotations, dict):
            for key in _NOISY_ANNOTATIONS:
                annotations.pop(key, None)
            if not annotations:
                metadata.pop("annotations")
    return cleaned


# What the approver is shown where a masked value changes: both sides read the same once
# masked, so without this the diff would hide the one change that matters most.
HIDDEN_CHANGE = "(value changes: masked -> masked, differs)"
# Fields the API server maintains: a write that changes only these changes nothing asked for.
_SERVER_MAINTAINED = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp")


def changes_anything(current: Any, proposed: Any, *, subresource: str = "") -> bool:
    """Whether ``proposed`` (a dry run's result) differs from ``current`` in anything but the
    fields the API server maintains. Compare the real, unmasked objects: a change hidden by
    masking is still a change."""
    if not isinstance(current, dict) or not isinstance(proposed, dict):
        return current != proposed
    return _comparable(current, subresource) != _comparable(proposed, subresource)


def _comparable(obj: dict[str, Any], subresource: str) -> dict[str, Any]:
    out = dict(obj)
    if subresource != "status":
        out.pop("status", None)
    metadata = out.get("metadata")
    if isinstance(metadata, dict):
        out["metadata"] = {k: v for k, v in metadata.items() if k not in _SERVER_MAINTAINED}
    return out


def mark_hidden_changes(
    raw_before: Any, raw_after: Any, masked_before: Any, masked_after: Any
) -> Any:
    """``masked_after`` with every value that masking made equal to ``masked_before``, though
    the real values differ, marked with ``HIDDEN_CHANGE``; no real value is revealed."""
    if raw_before == raw_after:
        return masked_after
    if _same_dict_shape(raw_before, raw_after, masked_before, masked_after):
        return {
            key: mark_hidden_changes(
                raw_before.get(key), raw_after.get(key), masked_before.get(key), value
            )
            for key, value in masked_after.items()
        }
    if _same_list_shape(raw_before, raw_after, masked_before, masked_after):
        return [
            mark_hidden_changes(rb, ra, mb, ma)
            for rb, ra, mb, ma in zip(
                raw_before, raw_after, masked_before, masked_after, strict=False
            )
        ]
    if masked_before != masked_after:
        return masked_after
    # The note goes first, so a long value wrapped or cut in the message still starts with it.
    return f"{HIDDEN_CHANGE} {masked_after}" if isinstance(masked_after, str) else HIDDEN_CHANGE


def _same_dict_shape(*values: Any) -> bool:
    return all(isinstance(v, dict) for v in values)


def _same_list_shape(*values: Any) -> bool:
    return all(isinstance(v, list) for v in values) and len({len(v) for v in values}) == 1
