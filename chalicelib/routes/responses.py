"""Turning core results and errors into HTTP responses, in one place: a JSON error on the
``/v1`` API, a Kubernetes ``Status`` on the ``/k8s`` proxy path, never a stack trace."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalice import Response

from chalicelib.errors import EksgateError
from chalicelib.kube.status import status_body

if TYPE_CHECKING:  # the proxy's answers; importing them here would load the whole gateway
    from chalicelib.gateway.answers import ProxyResponse


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
    body: dict[str, Any] = {"code": error.reason, "message": error.message}
    if error.details:
        body["details"] = error.details
    headers = {"WWW-Authenticate": 'Bearer realm="eksgate"'} if error.status == 401 else None
    return json_response(body, error.status, headers)


def proxy_response(result: ProxyResponse) -> Response:
    return Response(
        body=result.body,
        status_code=result.status,
        headers={"Content-Type": result.content_type, **result.headers},
    )


def json_route(handler: Callable[[], Any]) -> Response:
    """Run ``handler``; an EksgateError becomes the API's JSON error."""
    try:
        return json_response(handler())
    except EksgateError as error:
        return json_error(error)


def status_response(error: EksgateError) -> ProxyResponse:
    from chalicelib.gateway.answers import ProxyResponse

    answer = ProxyResponse(
        error.status,
        "application/json",
        json.dumps(status_body(error)),
        {"cache-control": "no-store"},
    )
    return answer.with_warning(error.message) if getattr(error, "as_warning", False) else answer


def status_for_exception(exc: BaseException) -> EksgateError:
    """Anything unexpected is a 500 Status without details (the log has them)."""
    if isinstance(exc, EksgateError):
        return exc
    return EksgateError("internal error in the eksgate gateway; the request was not forwarded")
