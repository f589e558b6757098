"""The local API Gateway builds REST proxy events, including greedy {proxy+} routes."""

from __future__ import annotations

import base64

from eksgate_local.gateway_server import _Route, build_event

ROUTES = [
    _Route(p)
    for p in ["/v1/token", "/k8s/{cluster}", "/k8s/{cluster}/{proxy+}", "/v1/approvals/{id}"]
]


def event(method, path, body=b""):
    return build_event(
        ROUTES,
        method,
        path,
        [("Accept", "application/json"), ("User-Agent", "kubectl/v1.31")],
        body,
        "127.0.0.1",
    )


def test_greedy_route_captures_the_whole_rest_of_the_path():
    e = event("GET", "/k8s/demo/api/v1/namespaces/shop/pods?limit=5&labelSelector=app%3Dweb")
    assert e["resource"] == "/k8s/{cluster}/{proxy+}"
    assert e["pathParameters"] == {"cluster": "demo", "proxy": "api/v1/namespaces/shop/pods"}
    assert e["multiValueQueryStringParameters"] == {"limit": ["5"], "labelSelector": ["app=web"]}
    assert e["requestContext"]["identity"]["userAgent"] == "kubectl/v1.31"
    assert e["requestContext"]["requestId"]


def test_literal_routes_win_over_variables():
    assert event("POST", "/v1/token")["resource"] == "/v1/token"
    assert event("GET", "/k8s/demo")["resource"] == "/k8s/{cluster}"
    assert event("GET", "/v1/approvals/abc")["pathParameters"] == {"id": "abc"}


def test_body_is_base64_and_unknown_paths_match_nothing():
    e = event("POST", "/v1/token", b'{"cluster": "demo"}')
    assert e["isBase64Encoded"] and base64.b64decode(e["body"]) == b'{"cluster": "demo"}'
    assert event("GET", "/nope") is None
