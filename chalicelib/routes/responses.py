"""Turning core results and errors into HTTP responses, in one place."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from chalice import Response

from chalicelib.errors import EksgateError

if TYPE_CHECKING:  # proxy uses bearer_token from here; only the type goes the other way
    from chalicelib.gateway.pipeline import ProxyResponse


def json_response(body: dict, status: int = 200, headers: dict | None = None) -> Response:
    return Response(
        body=json.dumps(body),
        status_code=status,
        headers={
            "Content-Type": "application/json",
            "Cache-Control": "no-store",
            **(headers or {}),
        },
    )


def json_error(error: EksgateError) -> Response:
    """The API's error shape: ``{"code", "message", "details"}`` with the HTTP status."""
    body = {"code": error.reason, "message": error.message}
    if error.details:
        body["details"] = error.details
    headers = {"WWW-Authenticate": 'Bearer realm="eksgate"'} if error.status == 401 else None
    return json_response(body, error.status, headers)


def bearer_token(headers: dict) -> str:
    """The token of ``Authorization: Bearer <token>``, or "" when there is none."""
    value = headers.get("authorization", "") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def proxy_response(result: "ProxyResponse") -> Response:
    return Response(
        body=result.body,
        status_code=result.status,
        headers={"Content-Type": result.content_type, **result.headers},
    )
