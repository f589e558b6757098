"""eksgate's records as audit.k8s.io/v1 Events, made from what the gateway really recorded."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import jwt
import pytest

from chalicelib.audit.chain import genesis_hash, seal
from chalicelib.audit.k8s_events import k8s_audit_events
from chalicelib.audit.k8s_policy import load_policy
from chalicelib.audit.recorder import GatewayAudit
from chalicelib.audit.records import new_event
from chalicelib.credentials.session_token import SessionTokenCodec
from chalicelib.errors import EksgateError
from chalicelib.gateway.upstream import UpstreamResponse
from tests.unit.test_proxy import AGENT, FakeUpstream, Keys, gateway, incoming

SCHEMA = json.loads((Path(__file__).parent / "audit-k8s-io-v1-event.schema.json").read_text())
VALIDATOR = jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
SECRET = (
    b'{"kind":"Secret","apiVersion":"v1","metadata":{"name":"db"},"data":{"pw":"aHVudGVyMg=="}}'
)


def audit_policy(rules: str):
    return load_policy(f"apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n{rules}")


class Recorded:
    def __init__(self, store):
        self.store = store
        self.upstream = FakeUpstream()
        self.gw, _ = gateway(self.upstream, audit=GatewayAudit(store))
        self.answers = {}
        self.audit_ids = {}
        self.token, _ = SessionTokenCodec(Keys()).issue(
            AGENT, "demo", "ci-agent", 600, {"repository": "acme/shop"}
        )
        self.session_id = jwt.decode(self.token, options={"verify_signature": False})["sid"]

    def call(self, label, path, **kwargs):
        request = incoming(path, token=self.token, **kwargs)
        self.audit_ids[label] = request.audit_id
        try:
            self.answers[label] = self.gw.handle(request)
        except EksgateError as refused:
            self.answers[label] = refused
        return request

    def events(self, policy=None):
        records = self.store.records(self.session_id)
        return k8s_audit_events(records, policy) if policy else k8s_audit_events(records)


@pytest.fixture()
def recorded(store):
    r = Recorded(store)
    r.call("list", "/api/v1/namespaces/shop/pods", query={"limit": ["5"]})
    r.upstream.response = UpstreamResponse(200, {"content-type": "application/json"}, SECRET)
    r.call("secret", "/api/v1/namespaces/shop/secrets/db")
    r.call("delete-ns", "/api/v1/namespaces/shop", method="DELETE")
    r.call(
        "patch",
        "/apis/apps/v1/namespaces/shop/deployments/web",
        method="PATCH",
        headers={"content-type": "application/merge-patch+json"},
        body=b'{"spec":{"replicas":3}}',
    )
    return r


def by_id(events):
    return {e["auditID"]: e for e in events}


def test_every_request_and_refusal_is_one_valid_event_with_its_audit_id(recorded):
    events = recorded.events()
    assert len(events) == 4
    assert set(by_id(events)) == set(recorded.audit_ids.values())
    for event in events:
        VALIDATOR.validate(event)
        assert event["stage"] == "ResponseComplete"
    # The Audit-ID the cluster was sent is the event's.
    sent = [r.headers["audit-id"] for r in recorded.upstream.sent]
    assert sent == [recorded.audit_ids["list"], recorded.audit_ids["secret"]]


def test_forwarded_event_carries_user_object_status_and_decision(recorded):
    event = by_id(recorded.events())[recorded.audit_ids["list"]]
    assert event["verb"] == "list"
    assert event["requestURI"] == "/api/v1/namespaces/shop/pods?limit=5"
    assert event["user"]["uid"] == "repo:acme/shop:environment:production"
    assert event["user"]["extra"] == {"eksgate.io/issuer": ["https://oidc.eksgate.local"]}
    assert event["objectRef"] == {"resource": "pods", "namespace": "shop", "apiVersion": "v1"}
    assert event["responseStatus"] == {"metadata": {}, "code": 200}
    notes = event["annotations"]
    assert notes["eksgate.io/effect"] == "allow"
    assert notes["eksgate.io/policy"] == "ci-agent"
    assert notes["eksgate.io/rule"] == "read-shop"
    assert notes["authorization.k8s.io/decision"] == "allow"
    assert event["requestReceivedTimestamp"] <= event["stageTimestamp"]
    assert "requestObject" not in event and "responseObject" not in event  # Metadata default


def test_chain_hash_annotation_is_the_last_record_of_the_request(recorded):
    records = recorded.store.records(recorded.session_id)
    hashes = {r.hash: r for r in records}
    for event in recorded.events():
        last = hashes[event["annotations"]["eksgate.io/chain-hash"]]
        assert last.kind in ("response", "refusal")
        assert last.request["audit_id"] == event["auditID"]


def test_refusals_carry_the_status_the_client_saw(recorded):
    events = by_id(recorded.events())
    denied = events[recorded.audit_ids["delete-ns"]]
    refused = recorded.answers["delete-ns"]
    assert denied["responseStatus"]["code"] == refused.status == 403
    assert denied["responseStatus"]["message"] == refused.message
    assert denied["responseStatus"]["status"] == "Failure"
    assert denied["annotations"]["eksgate.io/rule"] == "no-namespace-deletes"
    assert denied["annotations"]["authorization.k8s.io/decision"] == "forbid"
    # As kube-apiserver resolves it: a namespace is its own namespace.
    assert denied["objectRef"] == {
        "resource": "namespaces",
        "namespace": "shop",
        "name": "shop",
        "apiVersion": "v1",
    }
    pending = events[recorded.audit_ids["patch"]]
    assert pending["responseStatus"]["code"] == 403
    assert pending["annotations"]["eksgate.io/effect"] == "approve"
    assert pending["verb"] == "patch"


def test_policy_levels_choose_bodies_as_kube_apiserver_would(recorded):
    policy = audit_policy(
        "  - level: None\n    verbs: [delete]\n"
        "  - level: RequestResponse\n    resources: [{group: '', resources: [secrets, pods]}]\n"
        "  - level: Request\n    resources: [{group: apps}]\n"
        "  - level: Metadata\n"
    )
    events = by_id(recorded.events(policy))
    assert recorded.audit_ids["delete-ns"] not in events  # level None: no event
    listing = events[recorded.audit_ids["list"]]
    assert listing["level"] == "RequestResponse"
    assert listing["responseObject"] == {"kind": "PodList", "items": []}
    patch = events[recorded.audit_ids["patch"]]
    assert patch["level"] == "Request"
    assert patch["requestObject"] == {"spec": {"replicas": 3}}
    assert "responseObject" not in patch
    for event in events.values():
        VALIDATOR.validate(event)


def test_secret_values_never_reach_an_event_at_any_level(recorded):
    everything = audit_policy("  - level: RequestResponse\n")
    text = json.dumps(recorded.events(everything))
    assert "aHVudGVyMg==" not in text and "hunter2" not in text
    secret = by_id(recorded.events(everything))[recorded.audit_ids["secret"]]
    assert secret["responseObject"]["kind"] == "Secret"


def test_omitted_stage_drops_the_event():
    assert (
        k8s_audit_events(
            _approved_session(),
            audit_policy("  - level: Metadata\n    omitStages: [ResponseComplete]\n"),
        )
        == []
    )


def test_approval_annotations_name_the_approval_its_approvers_and_diff():
    [event] = k8s_audit_events(_approved_session())
    notes = event["annotations"]
    assert event["auditID"] == "5b0c3f2e-0000-4000-8000-000000000001"
    assert notes["eksgate.io/approval-id"] == "apr-1"
    assert notes["eksgate.io/approvers"] == "alice,bob"
    assert notes["eksgate.io/dry-run-diff-sha256"] == "d" * 64
    VALIDATOR.validate(event)


def test_a_request_without_its_response_yet_is_not_called_complete():
    records = _approved_session()[:-1]
    [event] = k8s_audit_events(records)
    assert event["stage"] == "RequestReceived" and "responseStatus" not in event
    VALIDATOR.validate(event)


def test_schema_refuses_what_is_not_an_audit_event():
    [event] = k8s_audit_events(_approved_session())
    for broken in (
        {**event, "stage": "Done"},
        {**event, "level": "All"},
        {k: v for k, v in event.items() if k != "auditID"},
        {**event, "user": {"name": "x"}},
        {**event, "stageTimestamp": "yesterday"},
        {**event, "responseStatus": {"code": "200"}},
    ):
        assert not VALIDATOR.is_valid(broken)


def _approved_session():
    session = "s-approved"
    request = {
        "method": "PATCH application/merge-patch+json",
        "path": "/apis/apps/v1/namespaces/shop/deployments/web",
        "query": "",
        "verb": "patch",
        "api_group": "apps",
        "api_version": "v1",
        "resource": "deployments",
        "subresource": "",
        "namespace": "shop",
        "name": "web",
        "audit_id": "5b0c3f2e-0000-4000-8000-000000000001",
    }
    base = dict(
        session_id=session,
        subject="sub-1",
        cluster="demo",
        identity={
            "subject": "sub-1",
            "issuer": "https://issuer",
            "email": "a@x.io",
            "groups": ["dev"],
            "matched_claims": {},
        },
    )
    decision = {
        "effect": "approve",
        "policy": "ci-agent",
        "rule": "change-deployments",
        "reason": "needs a human",
    }
    events = [
        new_event(
            "approval_consumed",
            **base,
            approval_id="apr-1",
            detail={
                "mode": "once",
                "approvers": ["alice", "bob"],
                "audit_id": request["audit_id"],
                "diff_sha256": "d" * 64,
            },
        ),
        new_event("request", **base, request=request, decision=decision, approval_id="apr-1"),
        new_event("response", **base, request=request, upstream_status=200, latency_ms=3.0),
    ]
    records, prev = [], genesis_hash(session)
    for seq, fields in enumerate(events):
        record = seal(
            {
                **fields,
                "seq": seq,
                "time": f"2026-11-22T13:40:0{seq}.123Z",
                "expires_at": 1_900_000_000,
            },
            prev,
        )
        records.append(record)
        prev = record.hash
    return records


def test_omit_managed_fields_drops_them_from_bodies(store):
    r = Recorded(store)
    r.upstream.response = UpstreamResponse(
        200,
        {"content-type": "application/json"},
        json.dumps(
            {"kind": "PodList", "items": [{"metadata": {"name": "web", "managedFields": [{}]}}]}
        ).encode(),
    )
    r.call("list", "/api/v1/namespaces/shop/pods")
    keep = audit_policy("  - level: RequestResponse\n")
    omit = load_policy(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitManagedFields: true\n"
        "rules:\n  - level: RequestResponse\n"
    )
    [kept] = r.events(keep)
    [omitted] = r.events(omit)
    assert kept["responseObject"]["items"][0]["metadata"]["managedFields"] == [{}]
    assert omitted["responseObject"]["items"][0]["metadata"] == {"name": "web"}


# ---- the gateway's own requests (dry run, current object): events of their own ----------


def _approval_asked(store, dry_run_status=200):
    """A patch that needs approval, through a gateway that dry-runs it and reads the object:
    (the client's Audit-ID, the session's records)."""
    from tests.unit.test_audit_id import ClusterOfOneDeployment, approval_gateway, patch_web

    r = Recorded(store)
    gw = approval_gateway(ClusterOfOneDeployment(dry_run_status), GatewayAudit(store))
    request = patch_web(-1 if dry_run_status >= 400 else 4, token=r.token)
    try:
        gw.handle(request)
    except EksgateError:
        pass
    return request.audit_id, store.records(r.session_id)


def test_the_gateways_own_requests_are_events_of_their_own_tied_to_the_request(store):
    audit_id, records = _approval_asked(store)
    events = by_id(k8s_audit_events(records))
    dry_run_id, current_id = f"{audit_id}-dry-run", f"{audit_id}-current-object"
    assert set(events) == {audit_id, dry_run_id, current_id}  # one event per request
    for event in events.values():
        VALIDATOR.validate(event)
    dry_run, current, asked = events[dry_run_id], events[current_id], events[audit_id]
    assert dry_run["verb"] == "patch" and dry_run["requestURI"].endswith("?dryRun=All")
    assert current["verb"] == "get" and "?" not in current["requestURI"]
    for own, purpose in ((dry_run, "dry-run"), (current, "current-object")):
        notes = own["annotations"]
        assert notes["eksgate.io/gateway-call"] == purpose
        assert notes["eksgate.io/for-audit-id"] == audit_id
        assert notes["authorization.k8s.io/decision"] == "allow"  # it reached the cluster
        assert own["responseStatus"]["code"] == 200
        assert own["objectRef"]["name"] == "web" and own["user"] == asked["user"]
    assert "changes nothing" in dry_run["annotations"]["eksgate.io/gateway-call-purpose"]
    # The client's own request: refused (waiting), naming the calls made for it.
    assert asked["responseStatus"]["code"] == 403
    assert asked["annotations"]["authorization.k8s.io/decision"] == "forbid"
    assert asked["annotations"]["eksgate.io/gateway-calls"] == f"{dry_run_id},{current_id}"


def test_a_refused_dry_run_is_the_callers_event_with_the_clusters_status(store):
    audit_id, records = _approval_asked(store, dry_run_status=422)
    events = by_id(k8s_audit_events(records))
    assert set(events) == {audit_id, f"{audit_id}-dry-run"}
    refused = events[audit_id]["responseStatus"]
    assert refused["code"] == 422 and refused["reason"] == "Invalid"
    assert events[f"{audit_id}-dry-run"]["responseStatus"]["code"] == 422


def test_a_policy_levels_the_gateways_own_requests_like_any_other(store):
    audit_id, records = _approval_asked(store)
    policy = audit_policy("  - level: None\n    verbs: [get]\n  - level: RequestResponse\n")
    events = by_id(k8s_audit_events(records, policy))
    assert set(events) == {audit_id, f"{audit_id}-dry-run"}  # the read is a get: level None
    assert events[audit_id]["requestObject"] == {"spec": {"replicas": 4}}


def test_the_stream_writes_a_gateway_call_when_its_answer_arrives(store):
    from chalicelib.audit.k8s_stream import events_for_batch

    audit_id, records = _approval_asked(store)
    dry_run_answer = next(r for r in records if r.kind == "gateway_response")
    [event] = events_for_batch([dry_run_answer.to_json_dict()], lambda _: records)
    assert event["auditID"] == f"{audit_id}-dry-run"


def test_records_of_older_gateways_keep_their_dry_run_inside_the_request(store):
    """Before the gateway's own requests had IDs of their own, one "request" record with a
    purpose stood for them under the client's ID: still not an event of its own."""
    legacy = [r for r in _approved_session() if r.kind != "approval_consumed"]
    purpose = {"purpose": "dry run and current object, for the approver's diff"}
    fields = {**legacy[0].sealed_fields(), "detail": purpose, "approval_id": None}
    fields.pop("prev_hash")
    dry_run = seal(fields, genesis_hash("s-approved"))
    events = k8s_audit_events([dry_run, *legacy])
    assert [e["auditID"] for e in events] == [legacy[0].request["audit_id"]]


def _exec_records(**response_fields):
    request = {
        "method": "POST",
        "path": "/api/v1/namespaces/shop/pods/web-1/exec",
        "query": "",
        "verb": "create",
        "api_group": "",
        "api_version": "v1",
        "resource": "pods",
        "subresource": "exec",
        "namespace": "shop",
        "name": "web-1",
        "audit_id": "6c1e0000-0000-4000-8000-000000000002",
    }
    base = dict(session_id="s-exec", subject="sub-1", cluster="demo", request=request)
    detail = {"exec": {"argv": ["ls"], "container": ""}}
    fields = [
        new_event("request", **base, detail=detail),
        new_event("response", **base, **response_fields),
    ]
    records, prev = [], genesis_hash("s-exec")
    for seq, item in enumerate(fields):
        sealing = {"seq": seq, "time": "2026-11-22T13:40:00.000Z", "expires_at": 1}
        record = seal({**item, **sealing}, prev)
        records.append(record)
        prev = record.hash
    return records


def test_an_exec_is_logged_as_kube_apiserver_logs_it_with_the_exit_code_beside():
    ran = _exec_records(upstream_status=3, detail={"exec": {"exit_code": 3, "outcome": "exited"}})
    [event] = k8s_audit_events(ran)
    assert event["responseStatus"] == {"metadata": {}, "code": 101}  # the upgraded stream
    assert event["annotations"]["eksgate.io/exec-exit-code"] == "3"
    assert event["objectRef"]["subresource"] == "exec"
    VALIDATOR.validate(event)
    failed = _exec_records(detail={"exec": {}, "error": {"status": 504, "message": "too slow"}})
    [event] = k8s_audit_events(failed)
    assert event["responseStatus"]["code"] == 504
    assert event["responseStatus"]["message"] == "too slow"
    assert "eksgate.io/exec-exit-code" not in event["annotations"]
