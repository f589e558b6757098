"""`policy suggest` and `policy simulate` against the local stack, after demo-like traffic."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chalicelib.config import DEFAULT_POLICY_DIR
from chalicelib.policy import load_policies
from eksgate.policy_evidence import recorded_identity, replay_decision

pytestmark = pytest.mark.e2e
AGENT = "repo:acme/shop:environment:production"


def eksgate(stack, *args):
    env = {**os.environ, "EKSGATE_AUDITOR_TOKEN": stack.mint("auditor")}
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
            "EKSGATE_AUDITOR_TOKEN",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


@pytest.fixture(scope="module")
def agent_traffic(stack, kube_config):
    """The demo's requests as the ci-agent: reads, a masked Secret, a refused namespace
    delete (twice), and a deployment patch that waits for approval and then goes through."""
    api_client = kube_config("ci-agent")
    core = client.CoreV1Api(api_client)
    core.list_namespaced_pod("shop")
    core.read_namespaced_secret("db-credentials", "shop")
    core.list_namespaced_service("shop")
    for _ in range(2):
        with pytest.raises(ApiException):
            core.delete_namespace("shop")
    apps = client.AppsV1Api(api_client)
    body = {"spec": {"template": {"metadata": {"annotations": {"eksgate/test": "1"}}}}}
    with pytest.raises(ApiException) as err:
        apps.patch_namespaced_deployment("web", "shop", body)
    approval_id = json.loads(err.value.body)["details"]["name"]
    stack.click(approval_id, "eksgate_approve", "U0BOB")
    apps.patch_namespaced_deployment("web", "shop", body)


def allowed_requests(stack):
    """Every request of the agent that went through, from the trail (via the API)."""
    from eksgate.api_client import call_api
    from eksgate.audit_window import read_window, since_time
    from eksgate.policy_evidence import evidence

    token = stack.mint("auditor")
    window = read_window(
        lambda path, params: call_api(
            stack.gateway_url,
            "GET",
            path,
            token=token,
            ca_file=stack.gateway_ca_file,
            params=params,
        ),
        [{"identity": AGENT}],
        since_time("1d"),
    )
    return [e for e in evidence(window.records) if e.forwarded]


def test_suggest_is_lintable_allows_what_was_used_and_is_narrower(stack, agent_traffic, tmp_path):
    result = eksgate(stack, "policy", "suggest", "--identity", AGENT, "--since", "1d")
    assert result.returncode == 0, result.stderr
    suggested = tmp_path / "suggested"
    suggested.mkdir()
    (suggested / "ci-agent.yaml").write_text(result.stdout)
    lint = subprocess.run(
        [sys.executable, "-m", "eksgate.cli", "policy", "lint", str(suggested)],
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "used" in result.stdout and "# Refused repeatedly" in result.stdout

    new = load_policies(suggested)
    shipped = load_policies(DEFAULT_POLICY_DIR)
    went_through = allowed_requests(stack)
    assert {e.effect for e in went_through} == {"allow", "approve"}
    for item in went_through:
        identity = recorded_identity(item.record)
        decision = replay_decision(identity, item.record.cluster, item.request, new)
        # Allowed stays allowed; an approval stays an approval (never silently an allow).
        assert decision.effect == item.effect, (item.request, decision.reason)

    # Narrower: over every request of the shipped policy's vocabulary, the suggestion is never
    # more permissive, and strictly less for some (other tests' traffic shares this stack, so
    # which ones depends on what the agent did; watch and pods/log are never used here).
    identity = recorded_identity(went_through[0].record)
    rank = {"deny": 0, "approve": 1, "allow": 2}
    stricter = 0
    for probe in probes():
        before = replay_decision(identity, "demo", probe, shipped).effect
        after = replay_decision(identity, "demo", probe, new).effect
        assert rank[after] <= rank[before], (probe, before, after)
        stricter += rank[after] < rank[before]
    assert stricter > 0


def probes():
    from chalicelib.kube.request import KubeRequest

    kinds = [
        ("", "pods", ""),
        ("", "pods", "log"),
        ("apps", "deployments", ""),
        ("apps", "replicasets", ""),
        ("", "services", ""),
        ("", "configmaps", ""),
        ("", "secrets", ""),
        ("", "events", ""),
        ("apps", "deployments", "scale"),
        ("rbac.authorization.k8s.io", "roles", ""),
    ]
    for group, resource, sub in kinds:
        for verb in ("get", "list", "watch", "create", "update", "patch", "delete"):
            for namespace in ("shop", "payments"):
                name = "web" if verb in ("get", "update", "patch", "delete") or sub else ""
                yield KubeRequest(
                    verb=verb,
                    path="",
                    api_group=group,
                    api_version="v1",
                    resource=resource,
                    subresource=sub,
                    namespace=namespace,
                    name=name,
                )


def test_simulate_reports_a_dropped_rule_and_fails(stack, agent_traffic, tmp_path):
    candidate = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, candidate)
    path = candidate / "ci-agent.yaml"
    document = yaml.safe_load(path.read_text())
    document["rules"] = [r for r in document["rules"] if r.get("name") != "read-shop"]
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    result = eksgate(
        stack, "policy", "simulate", str(candidate), "--identity", AGENT, "--since", "1d"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BREAKS: allow -> deny" in result.stdout
    assert "kubectl get pods -n shop" in result.stdout
    assert "kubectl get secrets db-credentials -n shop" in result.stdout
    # The approval rule was kept: the approved patch is not reported.
    assert "approve ->" not in result.stdout


def test_simulate_with_an_equivalent_policy_reports_no_change(stack, agent_traffic, tmp_path):
    candidate = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, candidate)
    path = candidate / "ci-agent.yaml"
    document = yaml.safe_load(path.read_text())
    document["rules"] = list(reversed(document["rules"]))  # same decisions, another order
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    result = eksgate(
        stack, "policy", "simulate", str(candidate), "--cluster", "demo", "--since", "1d"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no decision would change" in result.stdout


def test_only_auditors_may_suggest(stack, agent_traffic):
    env = {**os.environ, "EKSGATE_T": stack.mint("ci-agent")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "eksgate.cli",
            "policy",
            "suggest",
            "--identity",
            AGENT,
            "--gateway",
            stack.gateway_url,
            "--ca-file",
            stack.gateway_ca_file,
            "--oidc-token-env",
            "EKSGATE_T",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 2 and "auditor" in result.stderr and not result.stdout
    assert "Traceback" not in result.stderr
