"""One Audit-ID per request: made by eksgate, sent to the cluster, recorded, and echoed."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

from chalicelib.proxy_api import handle_proxy
from chalicelib.upstream import UpstreamResponse
from tests.unit.test_proxy import FakeUpstream, RecordingAudit, gateway, incoming


def test_the_cluster_gets_the_requests_own_audit_id_and_the_caller_gets_it_back():
    upstream = FakeUpstream(UpstreamResponse(
        200, {"content-type": "application/json", "audit-id": "cluster-made-another"},
        b'{"kind":"PodList","items":[]}'))
    gw, _ = gateway(upstream)
    request = incoming("/api/v1/namespaces/shop/pods")
    answer = gw.handle(request)
    [sent] = upstream.sent
    assert sent.headers["audit-id"] == request.audit_id
    assert uuid.UUID(request.audit_id).version == 4
    assert answer.headers["audit-id"] == request.audit_id


def test_a_callers_audit_id_is_never_forwarded_so_no_one_can_borrow_another_requests_id():
    upstream = FakeUpstream()
    gw, _ = gateway(upstream)
    request = incoming("/api/v1/namespaces/shop/pods",
                       headers={"audit-id": "someone-elses-approved-request"})
    answer = gw.handle(request)
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


class _Query(dict):
    def getlist(self, name):
        return [self[name]]


def test_a_refusal_answer_carries_the_audit_id_its_record_has():
    audit = _KeepingAudit()
    gw, _ = gateway(FakeUpstream(), audit=audit)
    chalice_request = SimpleNamespace(
        method="DELETE", query_params=_Query(), raw_body=b"",
        headers={"authorization": incoming("/").headers["authorization"]})
    answer = handle_proxy(lambda: SimpleNamespace(gateway=gw), chalice_request, None, "demo",
                          "api/v1/namespaces/shop")
    assert answer.status == 403
    assert answer.headers["audit-id"] == audit.audit_ids["refusal"]
    assert uuid.UUID(answer.headers["audit-id"])


class _KeepingAudit(RecordingAudit):
    def __init__(self):
        super().__init__()
        self.audit_ids = {}

    def __getattr__(self, kind):
        def record(*args, **kwargs):
            self.audit_ids[kind] = kwargs.get("audit_id")
        return record
