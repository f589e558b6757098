"""The app answers a request the same way behind either front door API Gateway gives it: the
packaged stack's HTTP API (payload format 1.0, stage ``$default``, header names lower-cased)
and the REST API of ``chalice deploy`` (stage ``api``, in the path too)."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from eksgate_local.gateway_server import LambdaContext, LocalRequest, app_routes, build_event

import app as app_module
from chalicelib.services import build_services

STAGES = {"http": "$default", "rest": "api"}
# A protobuf ConfigMap as kubectl 1.32+ sends it: the magic, then bytes that are not UTF-8.
PROTOBUF = b"k8s\x00\n\x0f\n\x02v1\x12\tConfigMap\x12\x05\n\x03cm1\xff\xfe\x80"


@pytest.fixture()
def call(settings, aws):
    """Invoke the app's Lambda handler with one request, in the event of the front door named."""
    app_module._services = build_services(settings, aws)
    routes = app_routes(app_module.app)

    def invoke(front_door, method, target, headers=(), body=b""):
        event = build_event(
            routes, LocalRequest(method, target, list(headers), body, "127.0.0.1"), front_door
        )
        assert event is not None and event["requestContext"]["stage"] == STAGES[front_door]
        return app_module.app(event, LambdaContext())

    yield invoke
    app_module._services = None


def answer(result):
    """Status, body bytes, and headers (without the Audit-ID each request gets anew)."""
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    headers.pop("audit-id", None)
    return result["statusCode"], data, headers


def through_both(call, method, target, headers=(), body=b""):
    """The same request behind each front door; asserts the two answers are identical."""
    http = answer(call("http", method, target, headers, body))
    rest = answer(call("rest", method, target, headers, body))
    assert http == rest
    return http[0], http[1]


def test_healthz_is_the_same_behind_both(call):
    status, data = through_both(call, "GET", "/healthz", [("User-Agent", "curl/8.5")])
    assert status == 200 and json.loads(data) == {"status": "ok"}


def test_a_proxied_request_without_credentials_is_the_same_status_behind_both(call):
    status, data = through_both(
        call,
        "GET",
        "/k8s/demo/api/v1/namespaces/shop/pods?limit=5",
        [("Accept", "application/json"), ("User-Agent", "kubectl/v1.33.1")],
    )
    status_object = json.loads(data)
    assert status == 401 and status_object["kind"] == "Status"
    assert status_object["reason"] == "Unauthorized"


def test_a_path_outside_the_prefix_is_the_same_status_behind_both(call):
    status, data = through_both(call, "GET", "/metrics", [("Accept", "application/json")])
    message = json.loads(data)["message"]
    assert status == 404 and "get --raw /k8s/<cluster>/metrics" in message
    assert "behind a REST API's execute-api URL, also its stage" in message


def test_a_token_request_with_a_bad_body_is_the_same_error_behind_both(call, oidc_issuer):
    headers = [
        ("Content-Type", "application/json"),
        ("Authorization", f"Bearer {oidc_issuer.mint('ci-agent')}"),
    ]
    status, data = through_both(call, "POST", "/v1/token", headers, b'{"cluster": ')
    assert status == 400 and json.loads(data)["code"] == "BadRequest"
    assert "not JSON" in json.loads(data)["message"]


def test_a_protobuf_body_arrives_intact_behind_both(call, oidc_issuer):
    # Mixed-case header names, as kubectl sends them: the HTTP API lower-cases them, and the
    # session token must still be found (a 401 here would mean it was not).
    issued = call(
        "http",
        "POST",
        "/v1/token",
        [
            ("Content-Type", "application/json"),
            ("Authorization", f"Bearer {oidc_issuer.mint('ci-agent')}"),
        ],
        b'{"cluster": "demo"}',
    )
    token = json.loads(issued["body"])["status"]["token"]
    headers = [
        ("Content-Type", "application/vnd.kubernetes.protobuf"),
        ("Accept", "application/json"),
        ("Authorization", f"Bearer {token}"),
    ]
    target = "/k8s/demo/api/v1/namespaces/shop/configmaps?fieldManager=kubectl-create"
    status, data = through_both(call, "POST", target, headers, PROTOBUF)
    assert status == 403 and "allows create configmaps" in json.loads(data)["message"]
    # Both refusals are in the session's trail with the whole body's size and the same request.
    session_id = jwt.decode(token, options={"verify_signature": False})["sid"]
    refusals = [
        r for r in app_module._services.audit_store.records(session_id) if r.kind == "refusal"
    ]
    assert len(refusals) == 2
    assert [r.request_body["size"] for r in refusals] == [len(PROTOBUF)] * 2
    http_request, rest_request = ({**r.request, "audit_id": ""} for r in refusals)
    assert http_request == rest_request and http_request["query"] == "fieldManager=kubectl-create"


def test_a_declared_path_asked_with_another_method_is_a_405_behind_the_http_api(call):
    """The HTTP API routes by method and path, so ``GET /v1/token`` reaches the catch-all:
    it answers 405 with the methods the path takes, not the Kubernetes prefix's 404."""
    result = answer(call("http", "GET", "/v1/token"))
    assert result[0] == 405 and result[2]["allow"] == "POST"
    assert json.loads(result[1])["code"] == "MethodNotAllowed"
    result = answer(call("http", "DELETE", "/v1/sessions/s-1"))
    assert result[0] == 405 and result[2]["allow"] == "GET"
    # A path no route declares is still the prefix's Status; so is one a segment too long.
    for target in ("/metrics", "/v1/sessions/s-1/extra", "/k8s"):
        status, data, _ = answer(call("http", "GET", target))
        assert status == 404 and "/k8s/<cluster>/" in json.loads(data)["message"]
