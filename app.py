"""eksgate's Chalice app: routes and wiring only; the logic lives in chalicelib/."""

from __future__ import annotations

import time

from chalice import Chalice, Response

from chalicelib.errors import EksgateError, ServiceUnavailable
from chalicelib.http_responses import json_error, json_response, proxy_response
from chalicelib.observability import flush_metrics, logger
from chalicelib.proxy_api import handle_proxy
from chalicelib.services import Services, build_services
from chalicelib.token_api import issue_token

app = Chalice(app_name="eksgate")
_services: Services | None = None
# Chalice's ANY does not reach greedy routes on API Gateway; list every method kubectl uses.
PROXY_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def services() -> Services:
    global _services
    if _services is None:
        _services = build_services()
    return _services


@app.middleware("http")
def observe(event, get_response):  # type: ignore[no-untyped-def]
    """Correlate logs by request id, log one line per request, flush metrics."""
    logger.set_correlation_id(event.context.get("requestId"))
    started = time.monotonic()
    try:
        response = get_response(event)
    except Exception:  # never a stack trace to the caller
        logger.exception("unhandled error")
        response = json_error(ServiceUnavailable("internal error; the request was not carried out"))
    logger.info("request", extra={"method": event.method, "path": event.context.get("resourcePath"),
                                  "status": response.status_code,
                                  "ms": round((time.monotonic() - started) * 1000, 1)})
    logger.remove_keys(["subject", "issuer"])
    flush_metrics()
    return response


@app.route("/v1/token", methods=["POST"], content_types=["application/json"])
def token() -> Response:
    request = app.current_request
    try:
        issued = issue_token(services(), request.headers, request.raw_body)
    except EksgateError as error:
        return json_error(error)
    return json_response(issued.exec_credential)


@app.route("/healthz", methods=["GET"])
def healthz() -> Response:
    return json_response({"status": "ok"})


@app.route("/k8s/{cluster}", methods=PROXY_METHODS, content_types=["*/*"])
def k8s_root(cluster: str) -> Response:
    return proxy_response(handle_proxy(services, app.current_request, app.lambda_context,
                                       cluster, ""))


@app.route("/k8s/{cluster}/{proxy+}", methods=PROXY_METHODS, content_types=["*/*"])
def k8s_proxy(cluster: str) -> Response:
    # Chalice passes no view argument for a greedy parameter; API Gateway names it "proxy".
    path = app.current_request.to_original_event()["pathParameters"]["proxy"]
    return proxy_response(handle_proxy(services, app.current_request, app.lambda_context,
                                       cluster, path))
