"""What the routes read from Chalice's request, typed as the code relies on it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chalice.app import Request


def request_body(request: Request) -> bytes:
    """The body as bytes ("" when there is none).

    Chalice decodes every body to bytes but annotates ``raw_body`` as ``str | bytes``; a str
    is encoded rather than passed on under the wrong type.
    """
    body = request.raw_body
    return body.encode() if isinstance(body, str) else body
