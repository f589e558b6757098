"""The local API Gateway builds the proxy events an HTTP API (payload format 1.0) and a REST API
send, including greedy {proxy+} routes, and routes a request as each would."""

from __future__ import annotations

import base64

import pytest
from eksgate_local.gateway_server import LocalRequest, Route, build_event

ANY = ["GET", "POST", "PUT", "PATCH", "DELETE"]
ROUTES = [
    Route("/v1/token", ["POST"]),
    Route("/k8s/{cluster}", ANY),
    Route("/k8s/{cluster}/{proxy+}", ANY),
    Route("/v1/approvals/{id}", ["GET"]),
    Route("/{proxy+}", ANY),
]
HEADERS = [("Accept", "application/json"), ("User-Agent", "kubectl/v1.31"), ("Host", "gw.test")]


def event(method, target, body=b"", front_door="http", headers=HEADERS):
    request = LocalRequest(method, target, list(headers), body, "127.0.0.1")
    return build_event(ROUTES, request, front_door)


def test_greedy_route_captures_the_whole_rest_of_the_path():
    e = event("GET", "/k8s/demo/api/v1/namespaces/shop/pods?limit=5&labelSelector=app%3Dweb")
    assert e["resource"] == "/k8s/{cluster}/{proxy+}"
    assert e["requestContext"]["resourcePath"] == "/k8s/{cluster}/{proxy+}"
    assert e["pathParameters"] == {"cluster": "demo", "proxy": "api/v1/namespaces/shop/pods"}
    assert e["multiValueQueryStringParameters"] == {"limit": ["5"], "labelSelector": ["app=web"]}
    assert e["queryStringParameters"] == {"limit": "5", "labelSelector": "app=web"}
    assert e["requestContext"]["identity"] == {
        "sourceIp": "127.0.0.1",
        "userAgent": "kubectl/v1.31",
    }
    assert e["requestContext"]["requestId"]


def test_literal_routes_win_over_variables():
    assert event("POST", "/v1/token")["resource"] == "/v1/token"
    assert event("GET", "/k8s/demo")["resource"] == "/k8s/{cluster}"
    assert event("GET", "/v1/approvals/abc")["pathParameters"] == {"id": "abc"}
    assert event("GET", "/metrics")["pathParameters"] == {"proxy": "metrics"}


def test_http_api_event_is_payload_format_1_0_on_the_default_stage():
    e = event("GET", "/k8s/demo/api?x=1")
    assert e["version"] == "1.0"
    context = e["requestContext"]
    assert context["stage"] == "$default" and context["path"] == "/k8s/demo/api"
    assert context["resourceId"] is None and context["httpMethod"] == "GET"
    assert context["domainName"] == "gw.test" and context["domainPrefix"] == "gw"
    assert context["protocol"] == "HTTP/1.1" and context["requestTimeEpoch"] > 0
    assert context["requestTime"].endswith(" +0000") and context["accountId"]
    assert e["stageVariables"] is None and e["path"] == "/k8s/demo/api"


def test_http_api_lower_cases_every_header_name_and_keeps_repeats():
    headers = [*HEADERS, ("X-Forwarded-For", "10.0.0.1"), ("x-forwarded-for", "10.0.0.2")]
    e = event("GET", "/k8s/demo/api", headers=headers)
    assert set(e["headers"]) == {"accept", "user-agent", "host", "x-forwarded-for"}
    assert e["multiValueHeaders"]["x-forwarded-for"] == ["10.0.0.1", "10.0.0.2"]
    assert e["headers"]["x-forwarded-for"] == "10.0.0.2"


def test_rest_api_event_keeps_header_case_and_puts_its_stage_in_the_path():
    e = event("GET", "/k8s/demo/api", front_door="rest")
    assert "version" not in e
    assert set(e["headers"]) == {"Accept", "User-Agent", "Host"}
    context = e["requestContext"]
    assert context["stage"] == "api" and context["path"] == "/api/k8s/demo/api"
    assert context["resourceId"] and context["resourcePath"] == "/k8s/{cluster}/{proxy+}"


def test_nothing_but_the_api_gateway_differences_change_between_the_shapes():
    http = event("POST", "/k8s/demo/api/v1/namespaces/shop/pods?dryRun=All", b"\x00k8s")
    rest = event("POST", "/k8s/demo/api/v1/namespaces/shop/pods?dryRun=All", b"\x00k8s", "rest")
    differ = {"version", "headers", "multiValueHeaders", "requestContext"}
    assert {k: v for k, v in http.items() if k not in differ} == {
        k: v for k, v in rest.items() if k not in differ
    }
    volatile = {"requestId", "extendedRequestId", "requestTime", "requestTimeEpoch"}
    context_differ = volatile | {"stage", "path", "resourceId"}
    assert {k: v for k, v in http["requestContext"].items() if k not in context_differ} == {
        k: v for k, v in rest["requestContext"].items() if k not in context_differ
    }


def test_body_is_base64_and_an_empty_body_is_null():
    e = event("POST", "/v1/token", b'{"cluster": "demo"}')
    assert e["isBase64Encoded"] and base64.b64decode(e["body"]) == b'{"cluster": "demo"}'
    empty = event("GET", "/k8s/demo/api")
    assert empty["body"] is None and empty["isBase64Encoded"] is False


def test_http_api_routes_by_method_and_path():
    # POST /v1/token is the only route key for that path: a GET takes GET /{proxy+}.
    assert event("GET", "/v1/token")["resource"] == "/{proxy+}"
    # No route key for OPTIONS at all: API Gateway answers it itself.
    assert event("OPTIONS", "/k8s/demo/api") is None


def test_rest_api_finds_the_resource_first_and_refuses_a_method_it_lacks():
    assert event("GET", "/v1/token", front_door="rest") is None
    assert event("POST", "/v1/token", front_door="rest")["resource"] == "/v1/token"


def test_unknown_paths_match_nothing_without_a_catch_all():
    request = LocalRequest("GET", "/nope", HEADERS, b"", "127.0.0.1")
    assert build_event([r for r in ROUTES if r.template != "/{proxy+}"], request) is None


def test_an_unknown_front_door_is_refused():
    with pytest.raises(ValueError, match="front_door"):
        event("GET", "/k8s/demo", front_door="websocket")
