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
