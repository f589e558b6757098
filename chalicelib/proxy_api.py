"""The ``/k8s/{cluster}/...`` routes: one Kubernetes API request through the gateway."""

from __future__ import annotations

from typing import Any, Callable

from chalicelib.errors import EksgateError
from chalicelib.observability import count, logger
from chalicelib.proxy import ProxyResponse, incoming_from, status_for_exception, status_response
from chalicelib.services import Services
from chalicelib.session_audit import Caller

DEFAULT_REMAINING_SECONDS = 29.0


def handle_proxy(
    services: Callable[[], Services],
    request: Any,
    lambda_context: Any,
    cluster: str,
    proxy_path: str,
    caller: Caller = Caller(),
) -> ProxyResponse:
    """Answer one proxied request; every failure is a Kubernetes Status, logged without tokens."""
    remaining = (
        lambda_context.get_remaining_time_in_millis() / 1000
        if lambda_context
        else DEFAULT_REMAINING_SECONDS
    )
    query = {name: request.query_params.getlist(name) for name in request.query_params or {}}
    incoming = None
    try:
        incoming = incoming_from(
            cluster,
            request.method,
            proxy_path,
            query,
            dict(request.headers),
            request.raw_body or None,
            min(remaining, DEFAULT_REMAINING_SECONDS),
        )
        result = services().gateway.handle(incoming, caller)
    except Exception as exc:  # every failure becomes a Status; unexpected ones are logged
        error = status_for_exception(exc)
        if not isinstance(exc, EksgateError):
            logger.exception("proxy failure")
        count("ProxyRefused" if error.status < 500 else "ProxyFailed")
        logger.warning(
            "proxy refused",
            extra={
                "cluster": cluster,
                "method": request.method,
                "path": "/" + proxy_path,
                "status": error.status,
                "reason": error.message,
            },
        )
        return status_response(error, incoming.audit_id if incoming else "")
    count("ProxyForwarded")
    return result
