"""One Audit-ID per request: made by eksgate, sent to the cluster, recorded, and echoed."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

from chalicelib.audit.recorder import GatewayAudit
from chalicelib.gateway.upstream import UpstreamResponse
from chalicelib.routes.proxy import handle_proxy
from tests.unit.test_exchange import MemoryStore
from tests.unit.test_exchange import gateway as recorded_gateway
from tests.unit.test_proxy import FakeUpstream, gateway, incoming


def through_the_route(gw, request):
    return handle_proxy(lambda: SimpleNamespace(gateway=gw), request)


def test_the_cluster_gets_the_requests_own_audit_id_and_the_caller_gets_it_back():
    upstream = FakeUpstream(
        UpstreamResponse(
            200,
            {"content-type": "application/json", "audit-id": "cluster-made-another"},
            b'{"kind":"PodList","items":[]}',
        )
    )
    gw, _ = gateway(upstream)
    request = incoming("/api/v1/namespaces/shop/pods")
    answer = through_the_route(gw, request)
    [sent] = upstream.sent
    assert sent.headers["audit-id"] == request.audit_id
    assert uuid.UUID(request.audit_id).version == 4
    assert answer.headers["audit-id"] == request.audit_id


def test_a_callers_audit_id_is_never_forwarded_so_no_one_can_borrow_another_requests_id():
    upstream = FakeUpstream()
    gw, _ = gateway(upstream)
    request = incoming(
        "/api/v1/namespaces/shop/pods", headers={"audit-id": "someone-elses-approved-request"}
    )
    answer = through_the_route(gw, request)
    [sent] = upstream.sent
    assert sent.headers["audit-id"] == request.audit_id != "someone-elses-approved-request"
    assert answer.headers["audit-id"] == request.audit_id


def test_every_request_gets_a_new_audit_id():
    upstream = FakeUpstream()
    gw, _ = gateway(upstream)
    gw.handle(incoming("/api/v1/namespaces/shop/pods"))
    gw.handle(incoming("/api/v1/namespaces/shop/pods"))
    first, second = (r.headers["audit-id"] for r in upstream.sent)
    assert first != second


def test_records_and_answers_carry_the_same_audit_id_refusals_included():
    store = MemoryStore()
    gw = recorded_gateway(FakeUpstream(), store)
    allowed = incoming("/api/v1/namespaces/shop/pods")
    through_the_route(gw, allowed)
    refused = incoming("/api/v1/namespaces/shop", method="DELETE")
    answer = through_the_route(gw, refused)
    assert answer.status == 403 and answer.headers["audit-id"] == refused.audit_id
    ids = [(e["kind"], e["request"]["audit_id"]) for e in store.events]
    assert ids == [
        ("request", allowed.audit_id),
        ("response", allowed.audit_id),
        ("refusal", refused.audit_id),
    ]
    assert isinstance(GatewayAudit(store), GatewayAudit)
