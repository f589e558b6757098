"""Who may approve, attacked through the local stack: signed clicks on real messages."""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

pytestmark = [pytest.mark.e2e, pytest.mark.adversarial]


def ask_for_a_change(kube_config, token: str, image: str) -> str:
    apps = client.AppsV1Api(kube_config(token=token))
    with pytest.raises(ApiException) as pending:
        apps.patch_namespaced_deployment(
            "web",
            "shop",
            {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}}},
        )
    body = json.loads(pending.value.body)
    assert pending.value.status == 403 and "approval required" in body["message"]
    return body["details"]["name"]


def status(stack, approval_id: str, token: str) -> str:
    import urllib3

    http = urllib3.PoolManager(ca_certs=stack.gateway_ca_file)
    answer = http.request(
        "GET",
        f"{stack.gateway_url}/v1/approvals/{approval_id}",
        headers={"Authorization": f"Bearer {token}"},
    )
    return answer.json()["status"]


def test_an_approver_whose_token_lacks_an_email_cannot_approve_their_own_request(
    stack, kube_config
):
    # Bob is on call; his token carries no email, so eksgate cannot tell his Slack account
    # from him: nobody may decide, Bob least of all.
    token = stack.session_token("approver", email=None, email_verified=None)
    approval_id = ask_for_a_change(kube_config, token, "nginx:1.26.9")
    stack.click(approval_id, "eksgate_approve", "U0BOB")
    stack.click(approval_id, "eksgate_approve", "U0CAROL")
    assert status(stack, approval_id, token) == "pending"
    text = json.dumps(stack.slack_message_for(approval_id)["blocks"])
    assert "user:bob (issuer" in text


def test_an_unverified_email_claim_locks_no_approver_out(stack, kube_config):
    # The agent's token claims Carol's address without verification: Carol may still decide,
    # and the message shows the claim for what it is.
    token = stack.session_token("ci-agent", email="carol@example.com", email_verified=False)
    approval_id = ask_for_a_change(kube_config, token, "nginx:1.26.8")
    text = json.dumps(stack.slack_message_for(approval_id)["blocks"])
    assert "claims carol@example.com (UNVERIFIED)" in text
    stack.click(approval_id, "eksgate_approve", "U0CAROL")
    assert status(stack, approval_id, token) == "approved"


def test_a_person_with_only_an_unverified_email_is_told_apart_from_no_one(stack, kube_config):
    token = stack.session_token("engineer", email="carol@example.com", email_verified=False)
    approval_id = ask_for_a_change(kube_config, token, "nginx:1.26.7")
    stack.click(approval_id, "eksgate_approve", "U0BOB")
    assert status(stack, approval_id, token) == "pending"
    refusals = [
        e for e in stack.slack_state().get("ephemerals", []) if "no verified email" in json.dumps(e)
    ]
    assert refusals


def test_an_approval_required_refusal_names_its_approval_in_the_record(stack, kube_config):
    import jwt
    import urllib3

    token = stack.session_token("ci-agent")
    approval_id = ask_for_a_change(kube_config, token, "nginx:1.26.6")
    session_id = jwt.decode(token, options={"verify_signature": False})["sid"]
    http = urllib3.PoolManager(ca_certs=stack.gateway_ca_file)
    answer = http.request(
        "GET",
        f"{stack.gateway_url}/v1/sessions/{session_id}",
        headers={"Authorization": f"Bearer {stack.mint('auditor')}"},
    )
    refusals = [r for r in answer.json()["records"] if r["kind"] == "refusal"]
    assert refusals and refusals[-1]["approval_id"] == approval_id
