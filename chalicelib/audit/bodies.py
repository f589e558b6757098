"""What an audit record keeps of a request or response body: the text, or its size and hash.

Bounded, so a record always fits a DynamoDB item (400 KB) and a session fits an API answer;
the hash still lets an investigator match a large body against a copy found elsewhere.
"""

from __future__ import annotations

import hashlib
from typing import Any

DEFAULT_LIMIT = 4096


def summarize_body(text: str | bytes | None, limit: int = DEFAULT_LIMIT) -> dict[str, Any] | None:
    """``{"inline": text, "size": n}`` for a body of at most ``limit`` bytes, else a summary.

    The summary is ``{"size": n, "sha256": hex, "omitted": True}``; bytes that are not UTF-8
    are always summarized. ``None`` for no body. ``text`` must already be masked by the
    caller (``chalicelib.masking``): it is stored as given, and even the hash of a short
    unmasked secret could be reversed by guessing.
    """
    if text is None or len(text) == 0:
        return None
    if isinstance(text, str):
        raw = text.encode("utf-8")
        decoded: str | None = text
    else:
        raw = bytes(text)
        try:
            decoded = raw.decode("utf-8")
        except UnicodeDecodeError:
            decoded = None
    size = len(raw)
    if decoded is not None and size <= limit:
        return {"inline": decoded, "size": size}
    return {"size": size, "sha256": hashlib.sha256(raw).hexdigest(), "omitted": True}
