"""Approvals end to end: the gateway, the Slack fake (clicks signed as Slack signs them), the
approvals table, and the retry that goes through."""

from __future__ import annotations

import json

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.e2e.conftest import gateway_flags

pytestmark = pytest.mark.e2e


def approval_id_of(error: ApiException) -> str:
    body = json.loads(error.body)
    assert error.status == 403 and body["kind"] == "Status"
    return body["details"]["name"]


def approval_status(stack, token: str, approval_id: str) -> dict:
    http = urllib3.PoolManager(ca_certs=stack.gateway_ca_file)
    answer = http.request(
        "GET",
        f"{stack.gateway_url}/v1/approvals/{approval_id}",
        headers={"Authorization": f"Bearer {token}"},
    )
    return {"http_status": answer.status, **answer.json()}


def patch_web(api_client, image: str):
    apps = client.AppsV1Api(api_client)
    return apps.patch_namespaced_deployment(
        "web",
        "shop",
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": image}]}}}},
    )


def test_a_change_waits_for_approval_and_the_retry_goes_through(stack, kube_config):
    token = stack.session_token("ci-agent")
    api_client = kube_config(token=token)
    with pytest.raises(ApiException) as err:
        patch_web(api_client, "nginx:1.27.1")
    approval_id = approval_id_of(err.value)
    message = json.loads(err.value.body)["message"]
    assert "approval required" in message and "run the same command again" in message
    slack_message = stack.slack_message_for(approval_id)
    text = json.dumps(slack_message["blocks"])
    assert "nginx:1.27.1" in text and "eksgate_approve" in text  # the diff and the buttons
    status = approval_status(stack, token, approval_id)
    assert status["http_status"] == 200 and status["approval_id"] == approval_id
    assert status["status"] == "pending"
    # Asking again does not post again while it is pending.
    with pytest.raises(ApiException) as again:
        patch_web(api_client, "nginx:1.27.1")
    assert approval_id_of(again.value) == approval_id
    assert sum(approval_id in json.dumps(m["blocks"]) for m in stack.slack_state()["messages"]) == 1
    answer = stack.click(approval_id, "eksgate_approve", "U0BOB")
    assert answer["status"] == 200
    stack.clear_kube_calls()
    patched = patch_web(api_client, "nginx:1.27.1")
    assert patched.spec.template.spec.containers[0].image == "nginx:1.27.1"
    patches = [c for c in stack.kube_calls() if c["verb"] == "patch" and not c["dry_run"]]
    assert patches and patches[0]["principal"].split("/")[1] == "eksgate-ci-agent"
    # A once-approval is used up; the same patch again now changes nothing, so it is
    # answered from its dry run without asking anyone.
    assert approval_status(stack, token, approval_id)["status"] == "used"
    stack.clear_kube_calls()
    patch_web(api_client, "nginx:1.27.1")
    assert all(c["dry_run"] for c in stack.kube_calls() if c["verb"] == "patch")
    updated = stack.slack_message_for(approval_id)
    assert "eksgate_approve" not in json.dumps(updated["blocks"])  # decided: no more buttons


def test_a_changed_body_does_not_match_an_approval(stack, kube_config):
    api_client = kube_config("ci-agent")
    with pytest.raises(ApiException) as err:
        patch_web(api_client, "nginx:1.27.2")
    approval_id = approval_id_of(err.value)
    stack.click(approval_id, "eksgate_approve", "U0CAROL")
    with pytest.raises(ApiException) as other:
        patch_web(api_client, "nginx:1.27.3")  # not what was approved
    assert approval_id_of(other.value) != approval_id


def test_a_request_that_would_fail_is_not_sent_to_a_human(stack, kube_config):
    before = len(stack.slack_state()["messages"])
    apps = client.AppsV1Api(kube_config("ci-agent"))
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment(
            "web", "shop", {"spec": {"selector": {"matchLabels": {"app": "other"}}}}
        )
    assert err.value.status == 422 and "immutable" in err.value.body
    assert len(stack.slack_state()["messages"]) == before


def test_the_requester_cannot_approve_their_own_request(stack, kube_config):
    # Bob is platform on-call (an approver) and an engineer: his own change waits for others.
    api = client.CoreV1Api(kube_config("approver"))
    with pytest.raises(ApiException) as err:
        api.patch_namespaced_config_map("shop-config", "shop", {"data": {"LOG_LEVEL": "debug"}})
    approval_id = approval_id_of(err.value)
    stack.click(approval_id, "eksgate_approve", "U0BOB")
    ephemerals = [e for e in stack.slack_state()["ephemerals"] if e["user"] == "U0BOB"]
    assert ephemerals and "You made this request" in json.dumps(ephemerals[-1])
    with pytest.raises(ApiException) as still:
        api.patch_namespaced_config_map("shop-config", "shop", {"data": {"LOG_LEVEL": "debug"}})
    assert approval_id_of(still.value) == approval_id


def test_a_non_approver_click_changes_nothing(stack, kube_config):
    with pytest.raises(ApiException) as err:
        patch_web(kube_config("ci-agent"), "nginx:1.27.4")
    approval_id = approval_id_of(err.value)
    stack.click(approval_id, "eksgate_approve", "U0MALLORY")
    ephemerals = [e for e in stack.slack_state()["ephemerals"] if e["user"] == "U0MALLORY"]
    assert ephemerals and "approver" in json.dumps(ephemerals[-1])
    assert "eksgate_approve" in json.dumps(stack.slack_message_for(approval_id)["blocks"])


def test_deny_asks_for_a_reason_and_the_retry_says_who_denied(stack, kube_config):
    api_client = kube_config("ci-agent")
    with pytest.raises(ApiException) as err:
        patch_web(api_client, "nginx:1.27.5")
    approval_id = approval_id_of(err.value)
    stack.click(approval_id, "eksgate_deny", "U0CAROL")
    views = [v for v in stack.slack_state()["views"] if v["user"] == "U0CAROL"]
    assert views, "Deny opens a modal asking for a reason"
    http = urllib3.PoolManager()
    answer = http.request(
        "POST",
        f"{stack.slack_url}_fake/submit_view",
        json={
            "view_id": views[-1]["id"],
            "user_id": "U0CAROL",
            "values": {"reason": "not during the sale"},
        },
    )
    assert answer.status == 200
    with pytest.raises(ApiException) as denied:
        patch_web(api_client, "nginx:1.27.5")
    message = json.loads(denied.value.body)["message"]
    assert "denied" in message and "not during the sale" in message


def test_a_forged_interaction_is_refused(stack):
    http = urllib3.PoolManager(ca_certs=stack.gateway_ca_file)
    answer = http.request(
        "POST",
        f"{stack.gateway_url}/slack/interactions",
        body=b"payload=%7B%7D",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": "1700000000",
            "X-Slack-Signature": "v0=" + "0" * 64,
        },
    )
    assert answer.status == 401


def test_approval_status_is_only_for_the_requester(stack):
    with pytest.raises(ApiException) as err:
        patch_web(client.ApiClient(_config(stack, stack.session_token("ci-agent"))), "nginx:1.27.6")
    approval_id = approval_id_of(err.value)
    other = approval_status(stack, stack.session_token("engineer"), approval_id)
    assert other["http_status"] == 404


def _config(stack, token):
    configuration = client.Configuration()
    configuration.host = f"{stack.gateway_url}/k8s/{stack.cluster}"
    configuration.ssl_ca_cert = stack.gateway_ca_file
    configuration.api_key = {"authorization": f"Bearer {token}"}
    return configuration


def test_approvals_wait_returns_when_someone_decides(stack, kube_config):
    import os
    import subprocess
    import sys
    import threading

    with pytest.raises(ApiException) as err:
        patch_web(kube_config("ci-agent"), "nginx:1.27.7")
    approval_id = approval_id_of(err.value)
    timer = threading.Timer(1.5, stack.click, (approval_id, "eksgate_approve", "U0BOB"))
    timer.start()
    waited = subprocess.run(
        [
            sys.executable,
            "-m",
            "eksgate.cli",
            "approvals",
            "wait",
            approval_id,
            *gateway_flags(stack),
            "--timeout",
            "60",
        ],
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "EKSGATE_OIDC_TOKEN": stack.mint("ci-agent")},
    )
    timer.join()
    assert waited.returncode == 0, waited.stderr
    assert json.loads(waited.stdout)["status"] == "approved"
    assert "pending" in waited.stderr and "approved" in waited.stderr


def test_the_same_bytes_as_another_patch_type_do_not_match(stack):
    token = stack.session_token("ci-agent")
    http = urllib3.PoolManager(ca_certs=stack.gateway_ca_file)
    path = f"{stack.gateway_url}/k8s/{stack.cluster}/apis/apps/v1/namespaces/shop/deployments/web"
    body = json.dumps(
        {"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.27.9"}]}}}}
    ).encode()

    def patch(content_type):
        return http.request(
            "PATCH",
            path,
            body=body,
            headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
        )

    first = patch("application/merge-patch+json")
    approval_id = first.json()["details"]["name"]
    stack.click(approval_id, "eksgate_approve", "U0BOB")
    other = patch("application/strategic-merge-patch+json")
    assert other.status == 403 and other.json()["details"]["name"] != approval_id
    assert patch("application/merge-patch+json").status == 200
