"""`kubectl auth can-i` and `eksgate whoami` through the gateway answer from the policy.

kubectl 1.32+ sends the review as protobuf; the oldest supported kubectl (1.31) sends JSON.
Both are run by path (`tests/kubectl_versions.py`), not through the version dispatcher.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import KUBECTLS, gateway_flags

pytestmark = [pytest.mark.e2e]


@pytest.fixture
def kubeconfig(stack, tmp_path):
    token_file = tmp_path / "oidc-token"
    token_file.write_text(stack.mint("ci-agent"))
    path = tmp_path / "kubeconfig"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "eksgate.cli",
            "kubeconfig",
            *gateway_flags(stack, token_file),
            "--merge",
            str(path),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    eksgate = Path(sys.executable).parent / "eksgate"
    path.write_text(path.read_text().replace("command: eksgate", f"command: {eksgate}"))
    return path


def can_i(stack, kubectl: str, kubeconfig: Path, tmp_path: Path, *args: str):
    return subprocess.run(
        [
            kubectl,
            "--kubeconfig",
            str(kubeconfig),
            "--certificate-authority",
            stack.gateway_ca_file,
            "auth",
            "can-i",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **os.environ,
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "KUBECACHEDIR": str(tmp_path / "kube-cache"),
        },
    )


@pytest.mark.skipif(not KUBECTLS, reason="kubectl is not installed")
def test_can_i_answers_from_the_policy(stack, kubeconfig, tmp_path, kubectl_binary):
    kubectl = kubectl_binary
    delete = can_i(stack, kubectl, kubeconfig, tmp_path, "delete", "namespaces")
    assert delete.returncode == 1 and delete.stdout.startswith("no")
    assert "no-namespace-deletes" in delete.stdout + delete.stderr
    patch = can_i(stack, kubectl, kubeconfig, tmp_path, "patch", "deployments", "-n", "shop")
    assert patch.returncode == 1 and "approval required" in patch.stdout
    assert "change-deployments" in patch.stdout
    read = can_i(stack, kubectl, kubeconfig, tmp_path, "list", "pods", "-n", "shop")
    assert read.returncode == 0 and read.stdout.strip() == "yes"
    listing = can_i(stack, kubectl, kubeconfig, tmp_path, "--list", "-n", "shop")
    assert listing.returncode == 0 and "pods" in listing.stdout


def test_eksgate_whoami_prints_identity_policy_and_rules(stack, tmp_path):
    token_file = tmp_path / "oidc-token"
    token_file.write_text(stack.mint("ci-agent"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "eksgate.cli",
            "whoami",
            *gateway_flags(stack, token_file),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")},
    )
    assert result.returncode == 0, result.stderr
    assert "policy ci-agent" in result.stdout
    assert "needs a human's approval:" in result.stdout and "[change-deployments]" in result.stdout
