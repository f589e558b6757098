"""kubectl through the gateway, with the kubeconfig `eksgate local up` writes (exec plugin)."""

from __future__ import annotations

import os
import subprocess
import textwrap

import pytest
from eksgate_local.kube_emulator.seed import SENSITIVE_VALUES

from chalicelib.masking import MASK
from tests.kubectl_versions import chosen

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not chosen(), reason="kubectl not installed")]
BINARY: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _each_chosen_kubectl(kubectl_binary):
    BINARY["path"] = kubectl_binary


def kubectl(stack, *args, context="demo-ci-agent", stdin=None):
    return subprocess.run(
        [BINARY["path"], "--context", context, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KUBECONFIG": stack.kubeconfig},
    )


def test_get_and_describe(stack):
    pods = kubectl(stack, "get", "pods", "-n", "shop")
    assert pods.returncode == 0, pods.stderr
    assert "NAME" in pods.stdout and "web-" in pods.stdout and "Running" in pods.stdout
    described = kubectl(stack, "describe", "deployment", "web", "-n", "shop")
    assert described.returncode == 0, described.stderr
    assert "nginx:1.27" in described.stdout


def test_secrets_come_back_masked(stack):
    result = kubectl(stack, "get", "secret", "db-credentials", "-n", "shop", "-o", "yaml")
    assert result.returncode == 0, result.stderr
    assert all(value not in result.stdout for value in SENSITIVE_VALUES)
    decoded = kubectl(
        stack, "get", "secret", "db-credentials", "-n", "shop", "-o", "jsonpath={.data.password}"
    )
    import base64

    assert base64.b64decode(decoded.stdout).decode() == MASK


def test_logs_are_masked(stack):
    result = kubectl(stack, "logs", "deploy/web", "-n", "shop", "--tail=50")
    assert result.returncode == 0, result.stderr
    assert result.stdout and all(value not in result.stdout for value in SENSITIVE_VALUES)


def test_denied_delete_prints_the_reason(stack):
    result = kubectl(stack, "delete", "namespace", "shop")
    assert result.returncode != 0
    assert "Error from server (Forbidden)" in result.stderr
    assert "no-namespace-deletes" in result.stderr


def test_exec_is_refused_with_a_readable_message(stack):
    result = kubectl(stack, "exec", "deploy/web", "-n", "shop", "--", "ls")
    assert result.returncode != 0
    assert "direct grant" in result.stderr or "Forbidden" in result.stderr


DEPLOYMENT = textwrap.dedent("""\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: hello
      namespace: default
    spec:
      replicas: 1
      selector: {matchLabels: {app: hello}}
      template:
        metadata: {labels: {app: hello}}
        spec:
          containers:
            - name: hello
              image: IMAGE
    """)


def test_apply_twice_then_delete_in_the_sandbox(stack):
    first = kubectl(
        stack,
        "apply",
        "-f",
        "-",
        context="demo-engineer",
        stdin=DEPLOYMENT.replace("IMAGE", "nginx:1.26"),
    )
    assert first.returncode == 0, first.stderr
    assert "deployment.apps/hello created" in first.stdout
    second = kubectl(
        stack,
        "apply",
        "-f",
        "-",
        context="demo-engineer",
        stdin=DEPLOYMENT.replace("IMAGE", "nginx:1.27"),
    )
    assert second.returncode == 0, second.stderr
    assert "configured" in second.stdout
    image = kubectl(
        stack,
        "get",
        "deploy",
        "hello",
        "-n",
        "default",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
        context="demo-engineer",
    )
    assert image.stdout == "nginx:1.27"
    deleted = kubectl(stack, "delete", "deploy", "hello", "-n", "default", context="demo-engineer")
    assert deleted.returncode == 0 and "deleted" in deleted.stdout


def test_apply_that_would_fail_is_refused_by_the_dry_run(stack):
    manifest = DEPLOYMENT.replace("IMAGE", "nginx:1.28").replace(
        "name: hello\n  namespace: default", "name: web\n  namespace: shop"
    )
    result = kubectl(stack, "apply", "-f", "-", stdin=manifest)
    assert result.returncode != 0 and "immutable" in result.stderr


def test_apply_that_needs_approval_says_where_it_waits(stack):
    result = kubectl(stack, "scale", "deployment", "web", "-n", "shop", "--replicas=4")
    assert result.returncode != 0
    assert "approval required" in result.stderr and "run the same command again" in result.stderr


def test_kubectl_waits_for_approval_then_goes_through(stack):
    import re

    # A count the deployment does not have yet (this test runs once per kubectl version).
    current = kubectl(
        stack, "get", "deployment", "worker", "-n", "shop", "-o", "jsonpath={.spec.replicas}"
    )
    replicas = f"--replicas={int(current.stdout or 1) + 1}"
    refused = kubectl(stack, "scale", "deployment", "worker", "-n", "shop", replicas)
    assert refused.returncode != 0 and "approval required" in refused.stderr
    approval_id = re.search(r"request ([0-9a-f]{20})", refused.stderr).group(1)
    stack.click(approval_id, "eksgate_approve", "U0BOB")
    scaled = kubectl(stack, "scale", "deployment", "worker", "-n", "shop", replicas)
    assert scaled.returncode == 0, scaled.stderr
    assert "scaled" in scaled.stdout
