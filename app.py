"""eksgate's Chalice app: routes and wiring only; the logic lives in chalicelib/.

Each route imports what it needs when it first runs: a cold start pays for Chalice and the
logger, and the first request for its own route's code (a Slack click never loads the proxy,
a token never loads Slack).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalice import Chalice, Rate, Response

from chalicelib.errors import EksgateError, ServiceUnavailable
from chalicelib.identity import Caller
from chalicelib.observability import flush_metrics, logger
from chalicelib.routes.requests import request_body
from chalicelib.routes.responses import json_error, json_response, json_route, proxy_response

if TYPE_CHECKING:
    from chalice.app import Request

    from chalicelib.services import Services

# Logging is powertools' (chalicelib/observability.py); Chalice would otherwise take over the
# logger of the same name and set it to ERROR, silently dropping the gateway's own log lines.
app = Chalice(app_name="eksgate", configure_logs=False)
# Run by the Chalice CLI (deploy, package): complete the API definition it generates
# (eksgate/api_definition.py) and compile the policy snapshot into the package
# (eksgate/policy_packaging.py). The Lambda never loads chalice.deploy, nor these imports.
if "chalice.deploy.swagger" in sys.modules:
    from eksgate.api_definition import use_complete_definitions
    from eksgate.policy_packaging import compile_when_packaging

    use_complete_definitions()
    compile_when_packaging()
_services: Services | None = None
# Chalice's ANY does not reach greedy routes on API Gateway; list every method kubectl uses.
PROXY_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def services() -> Services:
    global _services
    if _services is None:
        from chalicelib.services import build_services

        _services = build_services()
    return _services


def current_request() -> Request:
    """The request being handled: Chalice sets it before any route runs, so None is a bug."""
    request = app.current_request
    if request is None:
        raise RuntimeError("no current request: called outside a route")
    return request


@app.middleware("http")
def observe(event: Request, get_response: Callable[[Request], Response]) -> Response:
    """Correlate logs by request id, log one line per request, flush metrics."""
    logger.set_correlation_id(event.context.get("requestId"))
    started = time.monotonic()
    try:
        response = get_response(event)
    except Exception:  # never a stack trace to the caller
        logger.exception("unhandled error")
        response = json_error(ServiceUnavailable("internal error; the request was not carried out"))
    logger.info(
        "request",
        extra={
            "method": event.method,
            "path": event.context.get("resourcePath"),
            "status": response.status_code,
            "ms": round((time.monotonic() - started) * 1000, 1),
        },
    )
    logger.remove_keys(["subject", "issuer"])
    flush_metrics()
    return response


def caller() -> Caller:
    identity = current_request().context.get("identity") or {}
    return Caller(
        source_ip=identity.get("sourceIp") or "", user_agent=identity.get("userAgent") or ""
    )


@app.route("/v1/token", methods=["POST"], content_types=["application/json"])
def token() -> Response:
    from chalicelib.routes.token import issue_token

    request = current_request()
    body = request_body(request)
    return json_route(
        lambda: issue_token(services(), request.headers, body, caller()).exec_credential
    )


@app.route("/v1/approvals/{approval_id}", methods=["GET"])
def approval(approval_id: str) -> Response:
    from chalicelib.routes.approvals import approval_status

    return json_route(lambda: approval_status(services(), current_request().headers, approval_id))


@app.route("/v1/whoami", methods=["GET"])
def who_am_i() -> Response:
    from chalicelib.routes.whoami import whoami_response

    return json_route(lambda: whoami_response(services(), current_request().headers))


@app.route("/v1/sessions", methods=["GET"])
def sessions() -> Response:
    from chalicelib.routes.sessions import sessions_list

    request = current_request()
    return json_route(lambda: sessions_list(services(), request.headers, request.query_params))


@app.route("/v1/sessions/{session_id}", methods=["GET"])
def session(session_id: str) -> Response:
    from chalicelib.routes.sessions import session_detail

    return json_route(lambda: session_detail(services(), current_request().headers, session_id))


@app.route(
    "/slack/interactions", methods=["POST"], content_types=["application/x-www-form-urlencoded"]
)
def slack_interactions() -> Response:
    from chalicelib.routes.slack import handle_slack_interaction

    request = current_request()
    try:
        # The idempotency layer learns when this invocation times out, so a retried delivery
        # of a timed-out click is processed instead of waiting out the idempotency period.
        services().approvals.register_lambda_context(app.lambda_context)
        answer = handle_slack_interaction(
            services(), request.headers, request_body(request), caller()
        )
    except EksgateError as error:
        return json_error(error)
    if answer is None:
        return Response(body="", status_code=200)
    return json_response(answer)


@app.lambda_function(name="audit_export")
def audit_export(event: dict[str, Any], context: Any) -> dict[str, int]:
    """The audit table's stream (mapped in infra/template.yaml) -> anchors and JSON lines in S3."""
    import boto3

    from chalicelib.routes.audit_export import export_stream_event

    return {
        "exported": export_stream_event(
            event,
            boto3.client("s3"),
            session_records=lambda session_id: services().audit_store.records(session_id),
        )
    }


@app.schedule(Rate(1, unit=Rate.MINUTES))
def expire_overdue_approvals(event: Any) -> None:
    from chalicelib.routes.slack import expire_approvals

    expire_approvals(services())


@app.route("/v1/exec/{cluster}", methods=["POST"], content_types=["application/json"])
def exec_command(cluster: str) -> Response:
    from chalicelib.exec.api import exec_route

    request = current_request()
    return json_route(
        lambda: exec_route(services(), cluster, request.headers, request_body(request), caller())
    )


@app.route("/healthz", methods=["GET"])
def healthz() -> Response:
    return json_response({"status": "ok"})


@app.route("/k8s/{cluster}", methods=PROXY_METHODS, content_types=["*/*"])
def k8s_root(cluster: str) -> Response:
    return _proxy(cluster, "")


@app.route("/k8s/{cluster}/{proxy+}", methods=PROXY_METHODS, content_types=["*/*"])
def k8s_proxy(cluster: str) -> Response:
    # Chalice passes no view argument for a greedy parameter; API Gateway names it "proxy".
    return _proxy(cluster, current_request().to_original_event()["pathParameters"]["proxy"])


@app.route("/{proxy+}", methods=PROXY_METHODS, content_types=["*/*"])
def outside_k8s() -> Response:
    # Everything no other route takes (kubectl get --raw /metrics lands here): a Status that
    # names the prefix, not API Gateway's "Missing Authentication Token". Behind the HTTP API
    # a declared path asked with another method lands here too: that is a 405.
    from chalicelib.errors import MethodNotAllowed
    from chalicelib.routes.proxy import declared_methods, outside_prefix

    path = "/" + current_request().to_original_event()["pathParameters"]["proxy"]
    method = current_request().method
    allowed = declared_methods(path, app.routes)
    if allowed:
        answer = json_error(
            MethodNotAllowed(f"{path[:200]} takes {', '.join(allowed)}, not {method}")
        )
        answer.headers["Allow"] = ", ".join(allowed)
        return answer
    return proxy_response(outside_prefix(path, method))


def _proxy(cluster: str, path: str) -> Response:
    from chalicelib.routes.proxy import handle_proxy, incoming_request

    incoming = incoming_request(current_request(), app.lambda_context, cluster, path, caller())
    return proxy_response(handle_proxy(services, incoming))
