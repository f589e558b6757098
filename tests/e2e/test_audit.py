"""The audit trail end to end: what is recorded, who may read it, and that it is tamper-evident."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys

import jwt
import pytest
import urllib3
from eksgate_local.kube_emulator.seed import SENSITIVE_VALUES
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chalicelib.audit.items import record_from_item
from tests.e2e.conftest import gateway_flags, stored_item_texts

pytestmark = pytest.mark.e2e


def api_client(stack, token):
    configuration = client.Configuration()
    configuration.host = f"{stack.gateway_url}/k8s/{stack.cluster}"
    configuration.ssl_ca_cert = stack.gateway_ca_file
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(configuration)


def eksgate(stack, *args, token_env="EKSGATE_AUDITOR_TOKEN", identity="auditor", extra_env=None):
    env = {**os.environ, token_env: stack.mint(identity), **(extra_env or {})}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "eksgate.cli",
            *args,
            "--gateway",
            stack.gateway_url,
            "--ca-file",
            stack.gateway_ca_file,
            "--oidc-token-env",
            token_env,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def session_records(stack, session_id, identity="auditor"):
    http = urllib3.PoolManager(ca_certs=stack.gateway_ca_file)
    answer = http.request(
        "GET",
        f"{stack.gateway_url}/v1/sessions/{session_id}",
        headers={"Authorization": f"Bearer {stack.mint(identity)}"},
    )
    return answer.status, answer.json()


@pytest.fixture(scope="module")
def recorded_session(stack):
    """One agent session that reads, is refused, waits for approval and goes through."""
    token = stack.session_token("ci-agent")
    session_id = jwt.decode(token, options={"verify_signature": False})["sid"]
    api = client.CoreV1Api(api_client(stack, token))
    api.list_namespaced_pod("shop")
    api.read_namespaced_secret("db-credentials", "shop")
    with pytest.raises(ApiException):
        api.delete_namespace("shop")
    apps = client.AppsV1Api(api_client(stack, token))
    # A count the deployment does not have yet: other tests of this stack scale it too, and a
    # write that changes nothing is answered without asking anyone.
    current = apps.read_namespaced_deployment("worker", "shop").spec.replicas or 1
    body = {"spec": {"replicas": current + 1}}
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment("worker", "shop", body)
    approval_id = json.loads(err.value.body)["details"]["name"]
    stack.click(approval_id, "eksgate_approve", "U0BOB")
    apps.patch_namespaced_deployment("worker", "shop", body)
    return session_id, token, approval_id


def test_every_kind_of_event_is_recorded_in_order(stack, recorded_session):
    session_id, _, approval_id = recorded_session
    status, answer = session_records(stack, session_id)
    assert status == 200 and answer["chain"]["ok"]
    kinds = [r["kind"] for r in answer["records"]]
    assert kinds[0] == "token_issued"
    for kind in (
        "request",
        "response",
        "refusal",
        "approval_requested",
        "approval_posted",
        "approval_decided",
        "approval_consumed",
    ):
        assert kind in kinds, kind
    decided = next(r for r in answer["records"] if r["kind"] == "approval_decided")
    assert decided["approval_id"] == approval_id and decided["detail"]["slack_user"] == "U0BOB"
    refusal = next(r for r in answer["records"] if r["kind"] == "refusal")
    assert refusal["decision"]["rule"] == "no-namespace-deletes"
    record = next(r for r in answer["records"] if r["kind"] == "request")
    assert record["identity"]["matched_claims"] == {
        "repository": "acme/shop",
        "environment": "production",
    }
    assert record["source_ip"] == "127.0.0.1" and record["user_agent"]
    assert [r["seq"] for r in answer["records"]] == list(range(len(kinds)))


def test_only_auditors_read_the_trail(stack, recorded_session):
    session_id, _, _ = recorded_session
    assert session_records(stack, session_id, identity="engineer")[0] == 403
    http = urllib3.PoolManager(ca_certs=stack.gateway_ca_file)
    listing = http.request(
        "GET",
        f"{stack.gateway_url}/v1/sessions?identity=repo:acme/shop:environment:production",
        headers={"Authorization": f"Bearer {stack.mint('auditor')}"},
    )
    assert listing.status == 200
    assert session_id in {s["session_id"] for s in listing.json()["sessions"]}


def test_cli_replays_and_verifies_the_session(stack, recorded_session):
    session_id, _, _ = recorded_session
    replay = eksgate(stack, "sessions", "replay", session_id)
    assert replay.returncode == 0, replay.stderr
    assert "kubectl delete namespace shop" in replay.stdout and "approved by U0BOB" in replay.stdout
    verify = eksgate(stack, "sessions", "verify", session_id)
    assert verify.returncode == 0 and "chain intact" in verify.stdout


def test_verify_finds_a_tampered_record(stack):
    token = stack.session_token("ci-agent")
    session_id = jwt.decode(token, options={"verify_signature": False})["sid"]
    client.CoreV1Api(api_client(stack, token)).list_namespaced_pod("shop")
    dynamodb = stack.aws("dynamodb")
    # Someone with write access to the table (not the app: it has no update permission)
    # rewrites history: the denied request becomes an allowed one.
    dynamodb.update_item(
        TableName="eksgate-local-audit",
        Key={"session_id": {"S": session_id}, "seq": {"N": "1"}},
        UpdateExpression="SET user_agent = :ua",
        ExpressionAttributeValues={":ua": {"S": "nothing to see"}},
    )
    verify = eksgate(stack, "sessions", "verify", session_id)
    assert verify.returncode == 1
    assert "record 1 was altered" in verify.stdout + verify.stderr


def test_a_direct_grant_is_approved_recorded_and_ends_with_its_window(stack):
    token = stack.session_token("engineer")
    http = urllib3.PoolManager(ca_certs=stack.gateway_ca_file)
    # kubectl exec goes through an approval of rule debug-access (mode grant, direct)
    answer = http.request(
        "POST",
        f"{stack.gateway_url}/k8s/{stack.cluster}/api/v1/namespaces/"
        "shop/pods/web-0/exec?command=sh",
        headers={
            "Authorization": f"Bearer {token}",
            "Connection": "Upgrade",
            "Upgrade": "SPDY/3.1",
        },
    )
    body = answer.json()
    assert answer.status == 403 and "approval required" in body["message"]
    approval_id = body["details"]["name"]
    stack.click(approval_id, "eksgate_approve", "U0CAROL")
    direct = subprocess.run(
        [
            sys.executable,
            "-m",
            "eksgate.cli",
            "token",
            *gateway_flags(stack),
            "--mode",
            "direct",
            "--no-cache",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "EKSGATE_OIDC_TOKEN": stack.mint("engineer")},
    )
    assert direct.returncode == 0, direct.stderr
    assert json.loads(direct.stdout)["status"]["token"].startswith("k8s-aws-v1.")
    again = http.request(
        "POST",
        f"{stack.gateway_url}/k8s/{stack.cluster}/api/v1/namespaces/"
        "shop/pods/web-0/exec?command=sh",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert again.status == 403 and "eksgate token --mode direct" in again.json()["message"]
    scan = stack.aws("dynamodb").scan(TableName="eksgate-local-audit")["Items"]
    records = [record_from_item(i).to_json_dict() for i in scan]
    issued = [r for r in records if r["kind"] == "direct_token_issued"]
    assert any(approval_id in json.dumps(r) and "source_identity" in json.dumps(r) for r in issued)


def test_no_stored_item_holds_a_secret_value_or_a_token(stack, recorded_session):
    _, session_token, _ = recorded_session
    stored = stored_item_texts(stack)
    text = "\n".join(stored)
    assert stored, "the suite recorded something"
    for value in SENSITIVE_VALUES:
        assert value not in text
        assert base64.b64encode(value.encode()).decode() not in text
    assert session_token not in text
    assert "k8s-aws-v1." not in text
    assert not re.search(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.", text), (
        "a JWT (OIDC or session token) was stored"
    )
