"""Everyday kubectl through the gateway: restarts under once-approvals, honest refusals."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from tests.e2e.conftest import KUBECTLS

# The newest kubectl installed, chosen by path (the PATH dispatcher picks by server version).
KUBECTL = str(KUBECTLS.get("newest") or shutil.which("kubectl") or "")
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not KUBECTL, reason="kubectl not installed")]


def kubectl(stack, *args, context="demo-ci-agent"):
    return subprocess.run(
        [KUBECTL, "--context", context, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KUBECONFIG": stack.kubeconfig},
    )


def approval_in(stderr: str) -> str:
    marker = "approval required: request "
    assert marker in stderr, stderr
    return stderr.split(marker, 1)[1].split()[0]


def test_a_rollout_restart_runs_once_its_approval_is_given(stack):
    first = kubectl(stack, "rollout", "restart", "deployment/worker", "-n", "shop")
    approval_id = approval_in(first.stderr)
    header = json.dumps(stack.slack_message_for(approval_id)["blocks"][0])
    assert "restart deployments.apps worker in shop" in header
    again = kubectl(stack, "rollout", "restart", "deployment/worker", "-n", "shop")
    assert approval_in(again.stderr) == approval_id  # a new timestamp, the same request
    stack.click(approval_id, "eksgate_approve", "U0BOB")
    stack.clear_kube_calls()
    done = kubectl(stack, "rollout", "restart", "deployment/worker", "-n", "shop")
    assert done.returncode == 0, done.stderr
    assert "restarted" in done.stdout
    patches = [c for c in stack.kube_calls() if c["verb"] == "patch" and not c["dry_run"]]
    assert len(patches) == 1
    used = kubectl(stack, "rollout", "restart", "deployment/worker", "-n", "shop")
    assert used.returncode != 0  # once means once


@pytest.mark.parametrize(
    "args",
    [
        ("get", "pods", "-n", "shop", "--watch"),
        ("logs", "deploy/web", "-n", "shop", "-f", "--tail=3"),
    ],
)
def test_watches_and_follows_say_when_the_gateway_window_ends(stack, args):
    result = kubectl(stack, *args)
    assert "this stream ends after" in result.stderr, result.stderr


def test_exec_is_refused_with_what_the_policy_offers(stack):
    result = kubectl(stack, "exec", "deploy/web", "-n", "shop", "--", "ls")
    assert result.returncode != 0
    assert "offers no direct grant for it either" in result.stderr


def test_raw_paths_outside_the_prefix_get_a_status_naming_it(stack):
    result = kubectl(stack, "get", "--raw", "/metrics")
    assert result.returncode != 0
    assert "under /k8s/<cluster>/" in result.stderr and "get --raw /k8s/<cluster>/metrics" in (
        result.stderr
    )
    through = kubectl(stack, "get", "--raw", f"/k8s/{stack.cluster}/api/v1/namespaces/shop/pods")
    assert through.returncode == 0, through.stderr
    assert '"kind":"PodList"' in through.stdout.replace(" ", "")
