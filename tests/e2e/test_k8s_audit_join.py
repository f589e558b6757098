"""Kubernetes audit events join the cluster's own: one Audit-ID from the agent to the emulator.

An agent session reads, reads a Secret, is denied, waits for an approval and goes through;
its export (`eksgate sessions export --format k8s-audit`) is then matched against the
emulator's own call log, the way a SIEM matches it against EKS's audit log.
"""

from __future__ import annotations

import json

import jwt
import pytest
import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.audit.test_k8s_events import VALIDATOR
from tests.e2e.test_audit import api_client, eksgate

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def joined(stack, tmp_path_factory):
    stack.clear_kube_calls()
    token = stack.session_token("ci-agent")
    session_id = jwt.decode(token, options={"verify_signature": False})["sid"]
    http = urllib3.PoolManager(ca_certs=stack.gateway_ca_file)
    base = f"{stack.gateway_url}/k8s/{stack.cluster}"
    headers = {"Authorization": f"Bearer {token}"}
    seen = {}  # what the caller saw: Audit-ID header -> HTTP status

    def call(method, path, **kwargs):
        answer = http.request(
            method, base + path, headers={**headers, **kwargs.pop("h", {})}, **kwargs
        )
        seen[answer.headers["Audit-Id"]] = answer.status
        return answer

    call("GET", "/api/v1/namespaces/shop/pods")
    call("GET", "/api/v1/namespaces/shop/secrets/db-credentials")
    call("GET", "/api/v1/namespaces/shop/configmaps/not-there")  # the cluster's own 404
    call("DELETE", "/api/v1/namespaces/shop")  # denied by policy
    call("GET", "/version")
    patch = json.dumps({"spec": {"replicas": 4}}).encode()
    patch_headers = {"Content-Type": "application/merge-patch+json"}
    waiting = call(
        "PATCH", "/apis/apps/v1/namespaces/shop/deployments/worker", body=patch, h=patch_headers
    )
    assert waiting.status == 403
    stack.click(waiting.json()["details"]["name"], "eksgate_approve", "U0BOB")
    done = call(
        "PATCH", "/apis/apps/v1/namespaces/shop/deployments/worker", body=patch, h=patch_headers
    )
    assert done.status == 200, done.data
    # The Python kubernetes client too: its refusal carries the Audit-ID header.
    with pytest.raises(ApiException) as refused:
        client.RbacAuthorizationV1Api(api_client(stack, token)).list_cluster_role()
    seen[refused.value.headers["Audit-Id"]] = refused.value.status
    calls = stack.kube_calls()
    policy = tmp_path_factory.mktemp("policy") / "audit-policy.yaml"
    policy.write_text(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: RequestResponse\n"
    )
    export = eksgate(
        stack, "sessions", "export", session_id, "--format", "k8s-audit", "--policy", str(policy)
    )
    assert export.returncode == 0, export.stderr
    events = [json.loads(line) for line in export.stdout.splitlines()]
    return seen, calls, events


def test_every_exported_event_is_a_valid_audit_k8s_io_v1_event(joined):
    _, _, events = joined
    assert events
    for event in events:
        VALIDATOR.validate(event)


def test_every_call_that_reached_the_cluster_has_exactly_one_event(joined):
    _, calls, events = joined
    ids = [e["auditID"] for e in events]
    assert len(ids) == len(set(ids))
    assert calls
    for call in calls:
        assert ids.count(call["audit_id"]) == 1, call


def test_every_answer_the_caller_saw_has_one_event_with_its_status(joined):
    seen, _, events = joined
    by_id = {e["auditID"]: e for e in events}
    assert set(seen) == set(by_id)  # forwarded and refused alike, nothing more
    for audit_id, status in seen.items():
        assert by_id[audit_id]["responseStatus"].get("code") == status


def test_forwarded_events_match_what_the_cluster_executed(joined):
    _, calls, events = joined
    by_id = {e["auditID"]: e for e in events}
    # The gateway's own dry run and read of the current object share the request's ID.
    executed = [
        c
        for c in calls
        if not c["dry_run"]
        and not (c["method"] == "GET" and by_id[c["audit_id"]]["verb"] == "patch")
    ]
    for call in executed:
        event = by_id[call["audit_id"]]
        assert event["annotations"]["authorization.k8s.io/decision"] == "allow"
        assert event["responseStatus"]["code"] == call["status"]
        assert event["verb"] == call["verb"]
        ref = event.get("objectRef", {})
        assert ref.get("resource") == call["resource"]
        assert ref.get("namespace") == call["namespace"]
        assert ref.get("name") == call["name"]


def test_refusals_are_events_that_never_reached_the_cluster(joined):
    _, calls, events = joined
    reached = {c["audit_id"] for c in calls}
    refused = [e for e in events if e["annotations"]["authorization.k8s.io/decision"] == "forbid"]
    assert {e["annotations"].get("eksgate.io/rule") for e in refused} >= {
        "no-namespace-deletes",
        "no-rbac",
    }
    denied = [e for e in refused if e["annotations"]["eksgate.io/effect"] == "deny"]
    assert denied and not reached.intersection(e["auditID"] for e in denied)


def test_the_approved_change_names_its_approval_approver_and_diff(joined):
    _, _, events = joined
    patches = [e for e in events if e["verb"] == "patch"]
    pending, approved = patches
    assert pending["responseStatus"]["code"] == 403
    assert approved["responseStatus"]["code"] == 200
    notes = approved["annotations"]
    assert notes["eksgate.io/approval-id"] == pending["annotations"]["eksgate.io/approval-id"]
    assert notes["eksgate.io/approvers"] == "bob"  # Slack user U0BOB, by name
    assert len(notes["eksgate.io/dry-run-diff-sha256"]) == 64
    assert approved["requestObject"] == {"spec": {"replicas": 4}}


def test_secret_values_stay_masked_at_request_response_level(joined):
    from eksgate_local.kube_emulator.seed import SENSITIVE_VALUES

    _, _, events = joined
    text = json.dumps(events)
    for value in SENSITIVE_VALUES:
        assert value not in text
