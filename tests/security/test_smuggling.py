"""Request smuggling: a request decided as one thing must never reach the cluster as another.

Every case is sent by the ci-agent, whose policy reads pods, logs, deployments, services,
configmaps, secrets and events in ``shop`` and nothing in ``kube-system``. Each is either
refused before anything leaves, or forwarded exactly as it was decided (same path, same query,
no caller credential, no impersonation).
"""

from __future__ import annotations

import pytest

from chalicelib.errors import EksgateError
from tests.unit.test_proxy import FakeUpstream, gateway, incoming

pytestmark = pytest.mark.adversarial

SHOP_PODS = "/api/v1/namespaces/shop/pods"

REFUSED_PATHS = [
    "/api/v1/namespaces/shop/pods/../../kube-system/secrets",
    "/api/v1/namespaces/shop/./pods",
    "/api/v1/namespaces/shop//pods",
    "/api/v1/namespaces/shop/pods/%2e%2e/secrets",
    "/api/v1/namespaces/shop%2fkube-system/pods",
    "/api/v1/namespaces/%73hop/pods",
    "/api/v1/namespaces/shop/pods\\..\\secrets",
    "/api/v1/namespaces/shop/pods;/../secrets",
    "/api/v1/namespaces/ｓhop/pods",
    "/api/v1/namespaces/shop/pods\x00",
    "/api/v1/namespaces/shop/pods\n",
    "/api/v1/namespaces/kube-system/secrets",
    "/api/v1/namespaces/kube-system/configmaps/aws-auth",
    "/api/v1/secrets",
    "/api/v1/namespaces/shop/pods/web-0/exec",
    "/api/v1/namespaces/shop/pods/web-0/attach",
    "/api/v1/namespaces/shop/pods/web-0/portforward",
    "/api/v1/namespaces/shop/pods/web-0/proxy/admin",
    "/api/v1/namespaces/shop/services/web/proxy/",
    "/api/v1/proxy/namespaces/shop/pods/web-0",
    "/api/v1/namespaces/shop/serviceaccounts/default/token",
    "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
    "/apis/rbac.authorization.k8s.io/v1/namespaces/shop/rolebindings",
    "/api/v1/nodes/node-1/proxy/run",
    "/api/v1/namespaces",
    "/apis/apps/v1/namespaces/kube-system/deployments",
]


@pytest.mark.parametrize("path", REFUSED_PATHS)
def test_paths_outside_the_policy_or_of_two_meanings_never_leave(path):
    upstream = FakeUpstream()
    gw, _ = gateway(upstream)
    with pytest.raises(EksgateError) as refused:
        gw.handle(incoming(path))
    assert refused.value.status in (400, 403, 404, 405), refused.value.message
    assert upstream.sent == []


REFUSED_QUERIES = [
    {"limit\x00": ["1"]},
    {"labelSelector": ["app=web\x00"]},
    {"fieldSelector": ["metadata.namespace=kube-system"], "watch": ["x\r\n"]},
]


@pytest.mark.parametrize("query", REFUSED_QUERIES)
def test_queries_with_ambiguous_parts_never_leave(query):
    upstream = FakeUpstream()
    gw, _ = gateway(upstream)
    with pytest.raises(EksgateError):
        gw.handle(incoming(SHOP_PODS, query=query))
    assert upstream.sent == []


FORWARDED_AS_DECIDED = [
    {"limit": ["5"]},
    {"labelSelector": ["app in (web,worker)"]},
    {"fieldSelector": ["metadata.name=web-0"]},
    {"watch": ["true"], "resourceVersion": ["100"]},
    {"limit": ["5", "500"]},
    {"continue": ["eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ"]},
    {"timeoutSeconds": ["999999"], "watch": ["1"]},
    {"pretty": ["true"], "limit": ["1"]},
    {"limit": ["1;watch=true"]},
]


@pytest.mark.parametrize("query", FORWARDED_AS_DECIDED)
def test_allowed_queries_are_forwarded_exactly_as_decided(query):
    from chalicelib.kube.request import canonical_query, parse_query

    upstream = FakeUpstream()
    gw, _ = gateway(upstream)
    gw.handle(incoming(SHOP_PODS, query=query))
    sent = upstream.sent[0]
    path, _, forwarded = sent.path_and_query.partition("?")
    assert path == SHOP_PODS
    decided = parse_query(forwarded)
    for name, values in parse_query(query).items():
        if name != "timeoutSeconds":
            assert decided[name] == values
    assert forwarded == canonical_query(forwarded)  # canonical: Go reads back the same values


HOSTILE_HEADERS = [
    {"impersonate-user": "system:admin"},
    {"impersonate-group": "system:masters"},
    {"impersonate-uid": "0"},
    {"impersonate-extra-scopes": "all"},
    {"Impersonate-User": "system:admin"},
    {"connection": "Upgrade", "upgrade": "websocket"},
    {"upgrade": "SPDY/3.1"},
    {"accept": "application/vnd.kubernetes.protobuf"},
]


@pytest.mark.parametrize("headers", HOSTILE_HEADERS)
def test_impersonation_upgrades_and_unreadable_answers_are_refused(headers):
    upstream = FakeUpstream()
    gw, _ = gateway(upstream)
    with pytest.raises(EksgateError):
        gw.handle(incoming(SHOP_PODS, headers={k.lower(): v for k, v in headers.items()}))
    assert upstream.sent == []


DROPPED_HEADERS = {
    "cookie": "session=abc",
    "x-forwarded-for": "10.0.0.1",
    "x-remote-user": "system:admin",
    "x-remote-group": "system:masters",
    "proxy-authorization": "Basic YWRtaW46YWRtaW4=",
    "x-amz-security-token": "FwoGZXIvYXdzE",
    "authorization-extra": "Bearer stolen",
    "transfer-encoding": "chunked",
    "content-length": "0",
    "host": "kubernetes.default.svc",
}


@pytest.mark.parametrize("name", sorted(DROPPED_HEADERS))
def test_caller_headers_that_could_carry_identity_or_framing_are_dropped(name):
    upstream = FakeUpstream()
    gw, _ = gateway(upstream)
    gw.handle(incoming(SHOP_PODS, headers={name: DROPPED_HEADERS[name]}))
    sent = upstream.sent[0].headers
    assert name not in sent
    assert sent["authorization"].startswith("Bearer k8s-aws-v1.")


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "get", "PURGE"])
def test_methods_kube_does_not_know_are_refused(method):
    upstream = FakeUpstream()
    gw, _ = gateway(upstream)
    with pytest.raises(EksgateError):
        gw.handle(incoming(SHOP_PODS, method=method))
    assert upstream.sent == []
