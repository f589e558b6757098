"""Kubernetes audit events join the cluster's own: one Audit-ID from the agent to the emulator.

The demo's own traffic first (`eksgate local demo`, exactly as the README runs it): its
export (`eksgate sessions export --format k8s-audit`) is matched against the emulator's call
log, the way a SIEM matches it against EKS's audit log, and against what each client was
answered. Then a session of our own on the running stack adds what the demo does not do (an
approval denied, a Policy file choosing levels).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest
import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.audit.test_k8s_events import VALIDATOR
from tests.e2e.test_audit import api_client, eksgate

pytestmark = pytest.mark.e2e

# ---- the demo's traffic --------------------------------------------------------------------


def _jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def demo(demo_run):
    """The demo's export, the emulator's calls and the answers its clients got."""
    result, workdir = demo_run
    assert result.returncode == 0, result.stdout + result.stderr
    evidence = workdir / ".eksgate-local"
    events = _jsonl(evidence / "demo-k8s-audit.jsonl")
    calls = _jsonl(evidence / "demo-cluster-calls.jsonl")
    answers = [
        a
        for a in _jsonl(evidence / "demo-answers.jsonl")
        if a["path"].startswith(("/k8s/", "/v1/exec/"))
    ]
    return events, calls, answers


def test_the_demo_exports_valid_audit_k8s_io_v1_events(demo):
    events, _, _ = demo
    assert len(events) > 10
    for event in events:
        VALIDATOR.validate(event)


def test_every_request_of_the_demo_that_reached_the_cluster_has_exactly_one_event(demo):
    events, calls, _ = demo
    ids = [e["auditID"] for e in events]
    assert len(ids) == len(set(ids))
    assert len(calls) > 10 and all(call["audit_id"] for call in calls)
    # One request, one ID at the cluster too: several requests under one ID cannot each be
    # "the" event of that ID.
    assert len({call["audit_id"] for call in calls}) == len(calls)
    for call in calls:
        assert ids.count(call["audit_id"]) == 1, call
    # The demo's approvals made the gateway dry-run and read objects: each has its own ID.
    own = [c for c in calls if c["audit_id"].endswith(("-dry-run", "-current-object"))]
    assert len(own) >= 4 and all(c["dry_run"] for c in own if c["method"] == "PATCH")


def test_each_cluster_call_is_the_event_with_its_verb_object_and_status(demo):
    events, calls, _ = demo
    by_id = {e["auditID"]: e for e in events}
    for call in calls:
        event = by_id[call["audit_id"]]
        assert event["annotations"]["authorization.k8s.io/decision"] == "allow"
        assert event["responseStatus"]["code"] == call["status"], (event, call)
        # An exec is the one difference: eksgate records it as RBAC authorizes it (create
        # pods/exec); the cluster logs the WebSocket upgrade's GET as "get".
        exec_ = call["subresource"] == "exec"
        assert event["verb"] == ("create" if exec_ else call["verb"]), (event, call)
        ref = event.get("objectRef", {})
        for field, key in (("resource", "resource"), ("namespace", "namespace"), ("name", "name")):
            assert ref.get(field) == call[key], (event, call)
        assert ("dryRun=All" in event["requestURI"]) == call["dry_run"]


def test_the_gateways_own_calls_say_what_they_were_and_which_request_they_served(demo):
    events, calls, answers = demo
    by_id = {e["auditID"]: e for e in events}
    seen = {a["audit_id"]: a for a in answers}
    for call in calls:
        notes = by_id[call["audit_id"]]["annotations"]
        purpose = notes.get("eksgate.io/gateway-call")
        if purpose is None:
            assert call["audit_id"] in seen  # a client's own request, answered to the client
            continue
        served = notes["eksgate.io/for-audit-id"]
        assert call["audit_id"] == f"{served}-{purpose}"
        assert call["dry_run"] == (purpose == "dry-run")
        assert call["audit_id"] in by_id[served]["annotations"]["eksgate.io/gateway-calls"]
        assert seen[served]["status"] == 403  # the write waited for its approval
        assert call["audit_id"] not in seen  # no client ever saw this ID


def test_every_answer_a_client_saw_has_one_event_with_that_status(demo):
    events, _, answers = demo
    by_id = {e["auditID"]: e for e in events}
    assert answers and all(a["audit_id"] for a in answers)
    for answer in answers:
        assert by_id[answer["audit_id"]]["responseStatus"]["code"] in (
            answer["status"],
            101,  # an exec: kube-apiserver logs its upgraded stream; the client got the result
        ), answer


def test_every_refusal_in_the_demo_is_one_event_with_the_status_the_client_saw(demo):
    events, calls, answers = demo
    by_id = {e["auditID"]: e for e in events}
    refusals = [a for a in answers if a["status"] >= 400]
    reached = {c["audit_id"] for c in calls}
    kinds = set()
    for answer in refusals:
        event = by_id[answer["audit_id"]]
        status = event["responseStatus"]
        assert status["code"] == answer["status"] and status["status"] == "Failure"
        assert status["message"] == answer["message"]
        if answer["path"].startswith("/k8s/"):
            assert status["reason"] == answer["reason"]
        assert event["annotations"]["authorization.k8s.io/decision"] == "forbid"
        assert answer["audit_id"] not in reached  # a refusal never ran
        kinds.add(event["annotations"]["eksgate.io/effect"])
    # denied by a rule (a namespace delete, an exec), and waiting for approval (twice)
    assert kinds == {"deny", "approve"}
    assert len(refusals) >= 5


def test_the_demos_export_holds_no_secret_value(demo):
    from eksgate_local.kube_emulator.seed import SENSITIVE_VALUES

    text = json.dumps(demo[0])
    for value in SENSITIVE_VALUES:
        assert value not in text


# ---- a session of our own: an approval denied, and a Policy file ---------------------------


@pytest.fixture(scope="module")
def joined(stack, tmp_path_factory):
    stack.clear_kube_calls()
    token = stack.session_token("ci-agent")
    session_id = jwt.decode(token, options={"verify_signature": False})["sid"]
    http = urllib3.PoolManager(ca_certs=stack.gateway_ca_file)
    base = f"{stack.gateway_url}/k8s/{stack.cluster}"
    headers = {"Authorization": f"Bearer {token}"}
    seen = {}  # what the caller saw: Audit-ID header -> HTTP status
    refused = {}  # Audit-ID -> the Status the caller got

    def call(method, path, **kwargs):
        answer = http.request(
            method, base + path, headers={**headers, **kwargs.pop("h", {})}, **kwargs
        )
        seen[answer.headers["Audit-Id"]] = answer.status
        if answer.status >= 400:
            refused[answer.headers["Audit-Id"]] = answer.json()
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
    # A change a human turns down: asked, denied in Slack, and the retry is refused.
    scale = json.dumps({"spec": {"replicas": 9}}).encode()
    asked = call(
        "PATCH", "/apis/apps/v1/namespaces/shop/deployments/worker", body=scale, h=patch_headers
    )
    assert asked.status == 403
    stack.click(asked.json()["details"]["name"], "eksgate_deny", "U0BOB")
    [reason_form] = [v for v in stack.slack_state()["views"] if v["user"] == "U0BOB"][-1:]
    submitted = stack.http.request(
        "POST",
        f"{stack.slack_url}_fake/submit_view",
        json={"view_id": reason_form["id"], "user_id": "U0BOB", "values": {"reason": "too big"}},
    )
    assert submitted.status == 200, submitted.data
    denied = call(
        "PATCH", "/apis/apps/v1/namespaces/shop/deployments/worker", body=scale, h=patch_headers
    )
    assert denied.status == 403 and "approval denied" in denied.json()["message"], denied.data
    # The Python kubernetes client too: its refusal carries the Audit-ID header.
    with pytest.raises(ApiException) as rbac:
        client.RbacAuthorizationV1Api(api_client(stack, token)).list_cluster_role()
    seen[rbac.value.headers["Audit-Id"]] = rbac.value.status
    refused[rbac.value.headers["Audit-Id"]] = json.loads(rbac.value.body)
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
    return Joined(seen, calls, events, refused, session_id, policy.parent)


@dataclass(frozen=True)
class Joined:
    seen: dict  # what the caller saw: Audit-ID -> HTTP status
    calls: list  # what the emulator received
    events: list  # the export
    refused: dict  # Audit-ID -> the Status body the caller got
    session_id: str
    workdir: Path


def test_every_exported_event_is_a_valid_audit_k8s_io_v1_event(joined):
    events = joined.events
    assert events
    for event in events:
        VALIDATOR.validate(event)


def test_every_call_that_reached_the_cluster_has_exactly_one_event(joined):
    calls, events = joined.calls, joined.events
    ids = [e["auditID"] for e in events]
    assert len(ids) == len(set(ids))
    assert calls and len({call["audit_id"] for call in calls}) == len(calls)
    for call in calls:
        assert ids.count(call["audit_id"]) == 1, call


def test_every_answer_the_caller_saw_has_one_event_with_its_status(joined):
    seen, events = joined.seen, joined.events
    by_id = {e["auditID"]: e for e in events}
    own = {i for i, e in by_id.items() if "eksgate.io/gateway-call" in e["annotations"]}
    assert own and not own & set(seen)  # the gateway's own calls: no client saw their IDs
    assert set(seen) == set(by_id) - own  # forwarded and refused alike, nothing more
    for audit_id, status in seen.items():
        assert by_id[audit_id]["responseStatus"].get("code") == status


def test_forwarded_events_match_what_the_cluster_executed(joined):
    calls, events = joined.calls, joined.events
    by_id = {e["auditID"]: e for e in events}
    # The gateway's own dry runs and reads of the current object included: each its own ID.
    assert any(c["dry_run"] for c in calls)
    for call in calls:
        event = by_id[call["audit_id"]]
        assert event["annotations"]["authorization.k8s.io/decision"] == "allow"
        assert event["responseStatus"]["code"] == call["status"]
        assert event["verb"] == call["verb"]
        ref = event.get("objectRef", {})
        assert ref.get("resource") == call["resource"]
        assert ref.get("namespace") == call["namespace"]
        assert ref.get("name") == call["name"]


def test_refusals_are_events_that_never_reached_the_cluster(joined):
    calls, events = joined.calls, joined.events
    reached = {c["audit_id"] for c in calls}
    refused = [e for e in events if e["annotations"]["authorization.k8s.io/decision"] == "forbid"]
    assert {e["annotations"].get("eksgate.io/rule") for e in refused} >= {
        "no-namespace-deletes",
        "no-rbac",
        "change-deployments",  # waiting for approval, and denied by a human
    }
    denied = [e for e in refused if e["annotations"]["eksgate.io/effect"] == "deny"]
    assert denied and not reached.intersection(e["auditID"] for e in denied)


def test_each_refusal_is_the_status_the_caller_got(joined):
    events = joined.events
    by_id = {e["auditID"]: e for e in events}
    messages = []
    for audit_id, status in joined.refused.items():
        got = by_id[audit_id]["responseStatus"]
        assert got["code"] == status["code"] and got["reason"] == status["reason"]
        assert got["message"] == status["message"]
        messages.append(got["message"])
    assert any(m.startswith("approval denied") for m in messages)
    assert any(m.startswith("approval required") for m in messages)


def test_the_approved_change_names_its_approval_approver_and_diff(joined):
    events = joined.events
    patches = [
        e
        for e in events
        if e["verb"] == "patch"
        and "eksgate.io/gateway-call" not in e["annotations"]
        and e.get("requestObject") == {"spec": {"replicas": 4}}
    ]
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

    events = joined.events
    text = json.dumps(events)
    for value in SENSITIVE_VALUES:
        assert value not in text


def test_a_policy_file_sets_each_events_level_as_kube_apiserver_would(joined, stack):
    """None drops the event, Metadata keeps no bodies, RequestResponse keeps both; the first
    matching rule wins."""
    seen, everything = joined.seen, joined.events
    policy = joined.workdir / "levels.yaml"
    policy.write_text(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n"
        "  - level: None\n    nonResourceURLs: [/version]\n"
        "  - level: Metadata\n    resources: [{group: '', resources: [secrets]}]\n"
        "  - level: RequestResponse\n    verbs: [patch]\n"
        "  - level: Metadata\n"
    )
    export = eksgate(
        stack,
        *("sessions", "export", joined.session_id),
        *("--format", "k8s-audit", "--policy", str(policy)),
    )
    assert export.returncode == 0, export.stderr
    events = {e["auditID"]: e for e in map(json.loads, export.stdout.splitlines())}
    for event in events.values():
        VALIDATOR.validate(event)
    before = {e["auditID"]: e for e in everything}
    dropped = {i for i, e in before.items() if e["requestURI"].startswith("/version")}
    assert dropped and not dropped & set(events)  # level None: no event at all
    assert set(events) == set(before) - dropped
    for event in events.values():
        ref = event.get("objectRef", {})
        if ref.get("resource") == "secrets" or event["verb"] != "patch":
            assert event["level"] == "Metadata", event
            assert "requestObject" not in event and "responseObject" not in event
        else:
            assert event["level"] == "RequestResponse", event
    applied = next(
        e
        for i, e in events.items()
        if e["verb"] == "patch" and seen.get(i) == 200 and "requestObject" in e
    )
    assert applied["responseObject"]["kind"] == "Deployment"
