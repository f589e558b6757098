"""One request, one value: the query is parsed once, and what is recorded is what is sent."""

from __future__ import annotations

import pytest

import chalicelib.gateway.exchange as exchange_module
import chalicelib.kube.request as kube_request
from chalicelib.audit.recorder import GatewayAudit
from chalicelib.config import DEFAULT_POLICY_DIR
from chalicelib.credentials.session_token import SessionTokenCodec
from chalicelib.errors import Forbidden
from chalicelib.gateway.exchange import GatewayLimits
from chalicelib.gateway.forward import Forwarder
from chalicelib.gateway.pipeline import Gateway
from chalicelib.policy import load_policies
from tests.unit.test_proxy import Clusters, FakeUpstream, Keys, Roles, incoming


class MemoryStore:
    def __init__(self):
        self.events = []

    def append(self, fields):
        self.events.append(dict(fields))
        return fields


def gateway(upstream, store):
    return Gateway(
        SessionTokenCodec(Keys()),
        load_policies(DEFAULT_POLICY_DIR),
        Forwarder(Clusters(), Roles(), upstream),
        GatewayAudit(store),
        None,
        GatewayLimits(1024, 7),
    )


@pytest.fixture
def parse_calls(monkeypatch):
    calls = []
    real = kube_request.parse_query

    def counting(query):
        calls.append(query)
        return real(query)

    monkeypatch.setattr(kube_request, "parse_query", counting)
    monkeypatch.setattr(exchange_module, "parse_query", counting)
    return calls


@pytest.mark.parametrize(
    "path, query, method",
    [
        ("/api/v1/namespaces/shop/pods", {"limit": ["5"], "labelSelector": ["app=web"]}, "GET"),
        ("/api/v1/namespaces/shop/pods", {"watch": ["1"], "timeoutSeconds": ["300"]}, "GET"),
        (
            "/api/v1/namespaces/shop/pods/web-1/log",
            {"follow": ["true"], "tailLines": ["10"]},
            "GET",
        ),
    ],
)
def test_the_query_is_parsed_once_per_request(parse_calls, path, query, method):
    gateway(FakeUpstream(), MemoryStore()).handle(incoming(path, method=method, query=query))
    assert len(parse_calls) == 1


def test_a_refused_request_parses_its_query_once_too(parse_calls):
    with pytest.raises(Forbidden):
        gateway(FakeUpstream(), MemoryStore()).handle(
            incoming("/api/v1/namespaces/kube-system/pods", query={"limit": ["1"]})
        )
    assert len(parse_calls) == 1


@pytest.mark.parametrize(
    "query",
    [
        {"watch": ["true"], "timeoutSeconds": ["300"], "resourceVersion": ["10"]},
        {"watch": ["true"]},
        {"labelSelector": ["app in (web,worker)"], "limit": ["500"]},
    ],
)
def test_the_recorded_query_is_the_forwarded_query(query):
    upstream, store = FakeUpstream(), MemoryStore()
    gateway(upstream, store).handle(incoming("/api/v1/namespaces/shop/pods", query=query))
    sent = upstream.sent[0].path_and_query
    forwarded = sent.split("?", 1)[1]
    recorded = [event["request"]["query"] for event in store.events]
    assert [event_kind(e) for e in store.events] == ["request", "response"]
    assert recorded == [forwarded, forwarded]
    if "watch" in query:
        assert "timeoutSeconds=7" in forwarded  # capped to the gateway's window, and recorded


def event_kind(event):
    return event["kind"]
