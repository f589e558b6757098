"""The ``/k8s/{cluster}/...`` routes: one Kubernetes API request through the gateway."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from chalicelib.errors import EksgateError, NotFound
from chalicelib.gateway.answers import ProxyResponse
from chalicelib.gateway.exchange import IncomingRequest
from chalicelib.identity import Caller
from chalicelib.observability import count, logger
from chalicelib.routes.requests import request_body
from chalicelib.routes.responses import status_for_exception, status_response
from chalicelib.services import Services

if TYPE_CHECKING:
    from chalice.app import Request

DEFAULT_REMAINING_SECONDS = 29.0


def incoming_request(
    request: Request, lambda_context: Any, cluster: str, proxy_path: str, caller: Caller
) -> IncomingRequest:
    """What API Gateway delivered, as the gateway's value (header names lower-cased)."""
    remaining = (
        lambda_context.get_remaining_time_in_millis() / 1000
        if lambda_context
        else DEFAULT_REMAINING_SECONDS
    )
    params = request.query_params
    return IncomingRequest(
        cluster=cluster,
        method=request.method,
        path="/" + proxy_path,
        query={name: params.getlist(name) for name in params} if params else {},
        headers={k.lower(): v for k, v in dict(request.headers).items()},
        body=request_body(request) or None,
        remaining_seconds=min(remaining, DEFAULT_REMAINING_SECONDS),
        caller=caller,
    )


def handle_proxy(services: Callable[[], Services], incoming: IncomingRequest) -> ProxyResponse:
    """Answer one proxied request; every failure is a Kubernetes Status, logged without tokens."""
    try:
        result = services().gateway.handle(incoming)
    except Exception as exc:  # every failure becomes a Status; unexpected ones are logged
        error = status_for_exception(exc)
        if not isinstance(exc, EksgateError):
            logger.exception("proxy failure")
        count("ProxyRefused" if error.status < 500 else "ProxyFailed")
        logger.warning(
            "proxy refused",
            extra={
                "cluster": incoming.cluster,
                "method": incoming.method,
                "path": incoming.path,
                "status": error.status,
                "reason": error.message,
            },
        )
        return _with_audit_id(status_response(error), incoming.audit_id)
    count("ProxyForwarded")
    return _with_audit_id(result, incoming.audit_id)


def _with_audit_id(response: ProxyResponse, audit_id: str) -> ProxyResponse:
    """Every answer names the Audit-ID its request carried to the cluster (and into eksgate's
    records), refusals included, so a caller's log joins both audit trails."""
    return ProxyResponse(
        response.status,
        response.content_type,
        response.body,
        {**response.headers, "audit-id": audit_id},
    )


def outside_prefix(path: str, method: str) -> ProxyResponse:
    """A request outside ``/k8s/{cluster}``: most often ``kubectl get --raw /path``, which
    client-go sends from the host root. A Kubernetes Status says where the API lives."""
    count("ProxyRefused")
    return status_response(
        NotFound(
            f"eksgate serves the Kubernetes API under /k8s/<cluster>/, not at {path!r}. "
            "kubectl get --raw sends its path from the host root: include the prefix, e.g. "
            f"kubectl get --raw /k8s/<cluster>{path if path.startswith('/') else '/' + path} "
            "(behind a REST API's execute-api URL, also its stage: /<stage>/k8s/<cluster>/...)",
            details={"kind": "path", "name": path[:200], "method": method},
        )
    )


# The route that takes whatever no other route does (app.py ``outside_k8s``).
CATCH_ALL = "/{proxy+}"


def declared_methods(path: str, routes: Mapping[str, Iterable[str]]) -> list[str]:
    """The methods the app declares for ``path`` on any route but the catch-all, sorted.

    An HTTP API routes by method and path together, so ``GET /v1/token`` (a path declared
    only for POST) reaches the catch-all: it should hear that the method is wrong, not that
    the Kubernetes API lives elsewhere."""
    methods: set[str] = set()
    for template, route_methods in routes.items():
        if template != CATCH_ALL and _template_matches(template, path):
            methods.update(route_methods)
    return sorted(methods)


def _template_matches(template: str, path: str) -> bool:
    """Whether an API Gateway path template (``/v1/sessions/{id}``, ``/k8s/{c}/{proxy+}``)
    takes ``path``: a ``{name}`` is one segment, a ``{name+}`` the rest (one or more)."""
    parts = [part for part in template.split("/") if part]
    segments = [segment for segment in path.split("/") if segment]
    for index, part in enumerate(parts):
        if part.startswith("{") and part.endswith("+}"):
            return len(segments) > index
        if index >= len(segments) or not (part.startswith("{") or part == segments[index]):
            return False
    return len(segments) == len(parts)
