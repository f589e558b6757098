"""One Audit-ID per request: made by eksgate, sent to the cluster, recorded, and echoed."""

from __future__ import annotations

import json
import re
import uuid
from types import SimpleNamespace

import pytest

from chalicelib.audit.recorder import GatewayAudit
from chalicelib.config import DEFAULT_POLICY_DIR
from chalicelib.credentials.session_token import SessionTokenCodec
from chalicelib.errors import EksgateError, Forbidden
from chalicelib.gateway.exchange import GatewayLimits
from chalicelib.gateway.forward import Forwarder
from chalicelib.gateway.pipeline import Gateway
from chalicelib.gateway.upstream import UpstreamResponse
from chalicelib.policy import load_policies
from chalicelib.routes.proxy import handle_proxy
from tests.unit.test_exchange import MemoryStore
from tests.unit.test_exchange import gateway as recorded_gateway
from tests.unit.test_proxy import (
    Clusters,
    FakeUpstream,
    Keys,
    RecordingAudit,
    Roles,
    gateway,
    incoming,
)


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


# ---- the gateway's own requests: each its own Audit-ID -----------------------------------

WEB = "/apis/apps/v1/namespaces/shop/deployments/web"
AUDIT_ID_RULE = re.compile(r"^[A-Za-z0-9-]{1,256}$")  # the strictest rule stated for it


def deployment(replicas):
    return json.dumps(
        {"kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": replicas}}
    ).encode()


class ClusterOfOneDeployment:
    """Answers the dry run with the patched object, a GET with the live one."""

    def __init__(self, dry_run_status=200):
        self.sent = []
        self.dry_run_status = dry_run_status

    def send(self, cluster, request, max_bytes):
        self.sent.append(request)
        headers = {"content-type": "application/json"}
        if "dryRun=All" in request.path_and_query:
            if self.dry_run_status >= 400:
                refusal = {
                    "kind": "Status",
                    "status": "Failure",
                    "reason": "Invalid",
                    "message": 'Deployment.apps "web" is invalid: spec.replicas: must be >= 0',
                    "code": self.dry_run_status,
                }
                return UpstreamResponse(self.dry_run_status, headers, json.dumps(refusal).encode())
            return UpstreamResponse(200, headers, deployment(4))
        return UpstreamResponse(200, headers, deployment(2))


class PendingApprovals:
    """Stands in for ApprovalGate: nothing approved yet; asking answers "waiting"."""

    def __init__(self):
        self.diffs = []

    def find(self, exchange, decision):
        return None

    def ask(self, exchange, decision, diff, max_wait):
        self.diffs.append(diff)
        raise Forbidden(
            "approval required: request apr-1 is waiting in #eksgate-approvals",
            details={"name": "apr-1", "kind": "approval", "approval_id": "apr-1"},
        )


def approval_gateway(upstream, audit):
    return Gateway(
        SessionTokenCodec(Keys()),
        load_policies(DEFAULT_POLICY_DIR),
        Forwarder(Clusters(), Roles(), upstream),
        audit,
        PendingApprovals(),
        GatewayLimits(1024, 20),
    )


def patch_web(replicas=4, token=None):
    return incoming(
        WEB,
        method="PATCH",
        headers={"content-type": "application/merge-patch+json"},
        body=json.dumps({"spec": {"replicas": replicas}}).encode(),
        token=token,
    )


def test_the_gateways_dry_run_and_read_each_carry_an_audit_id_of_their_own():
    upstream, store = ClusterOfOneDeployment(), MemoryStore()
    request = patch_web()
    answer = through_the_route(approval_gateway(upstream, GatewayAudit(store)), request)
    assert answer.status == 403 and answer.headers["audit-id"] == request.audit_id
    dry_run, current = upstream.sent
    assert dry_run.method == "PATCH" and "dryRun=All" in dry_run.path_and_query
    assert dry_run.headers["audit-id"] == f"{request.audit_id}-dry-run"
    assert current.method == "GET" and current.path_and_query == WEB
    assert current.headers["audit-id"] == f"{request.audit_id}-current-object"
    ids = {request.audit_id, dry_run.headers["audit-id"], current.headers["audit-id"]}
    assert len(ids) == 3  # one request, one ID, at the cluster as in the trail
    assert all(AUDIT_ID_RULE.match(audit_id) for audit_id in ids)


def test_each_gateway_call_is_recorded_before_it_is_sent_and_with_its_answer():
    upstream, store = ClusterOfOneDeployment(), MemoryStore()
    request = patch_web()
    through_the_route(approval_gateway(upstream, GatewayAudit(store)), request)
    trail = [(e["kind"], e["request"]["audit_id"]) for e in store.events]
    assert trail == [
        ("gateway_request", f"{request.audit_id}-dry-run"),
        ("gateway_response", f"{request.audit_id}-dry-run"),
        ("gateway_request", f"{request.audit_id}-current-object"),
        ("gateway_response", f"{request.audit_id}-current-object"),
        ("refusal", request.audit_id),
    ]
    dry_run, _, current, answered, _ = store.events
    # The truth about each: what was sent (the dry run's query, the read's verb), for which
    # request, and what the cluster answered.
    assert dry_run["request"]["query"] == "dryRun=All"
    assert dry_run["request"]["verb"] == "patch" and current["request"]["verb"] == "get"
    assert current["request"]["method"] == "GET" and current["request"]["query"] == ""
    assert dry_run["detail"] == {"gateway_call": "dry-run", "for_audit_id": request.audit_id}
    assert answered["upstream_status"] == 200 and answered["latency_ms"] is not None
    assert dry_run["decision"]["effect"] == "approve"


def test_no_record_no_dry_run():
    upstream = ClusterOfOneDeployment()
    audit = RecordingAudit(fail_on="gateway_request")
    with pytest.raises(EksgateError):
        approval_gateway(upstream, audit).handle(patch_web())
    assert upstream.sent == []


def test_a_refused_dry_run_is_recorded_with_the_status_the_caller_got():
    upstream, store = ClusterOfOneDeployment(dry_run_status=422), MemoryStore()
    request = patch_web(-1)
    answer = through_the_route(approval_gateway(upstream, GatewayAudit(store)), request)
    assert answer.status == 422 and answer.headers["audit-id"] == request.audit_id
    assert len(upstream.sent) == 1  # no read of the current object, no one asked
    refusal = store.events[-1]
    assert refusal["kind"] == "refusal" and refusal["request"]["audit_id"] == request.audit_id
    assert refusal["detail"]["status"] == 422 and refusal["detail"]["reason"] == "Invalid"
    assert "spec.replicas: must be >= 0" in refusal["detail"]["message"]
    assert store.events[1]["kind"] == "gateway_response"
    assert store.events[1]["upstream_status"] == 422


def test_a_gateway_audit_id_names_its_purpose_or_is_refused():
    from chalicelib.gateway.gateway_calls import gateway_audit_id

    assert gateway_audit_id("abc", "dry-run") == "abc-dry-run"
    with pytest.raises(ValueError):
        gateway_audit_id("abc", "anything")
