"""Exec through the local stack: the CLI, the kubectl plugin, masking, refusal, audit replay."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jwt
import pytest
import urllib3
from eksgate_local.kube_emulator.exec_commands import CONFIG_API_KEY, CONFIG_SECRET_KEY
from eksgate_local.kube_emulator.seed import DB_PASSWORD

pytestmark = pytest.mark.e2e


def web_pod(stack, token) -> str:
    http = urllib3.PoolManager(ca_certs=stack.gateway_ca_file)
    answer = http.request(
        "GET",
        f"{stack.gateway_url}/k8s/{stack.cluster}/api/v1/namespaces/shop/pods",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status == 200, answer.data
    return sorted(
        p["metadata"]["name"]
        for p in answer.json()["items"]
        if p["metadata"]["name"].startswith("web-")
    )[0]


def eksgate_exec(stack, tmp_path, *args, stdin=None):
    env = {
        **os.environ,
        "EKSGATE_TEST_OIDC": stack.mint("ci-agent"),
        "XDG_CACHE_HOME": str(tmp_path),
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "eksgate.cli",
            "exec",
            "--gateway",
            stack.gateway_url,
            "--cluster",
            stack.cluster,
            "--ca-file",
            stack.gateway_ca_file,
            "--oidc-token-env",
            "EKSGATE_TEST_OIDC",
            *args,
        ],
        input=stdin,
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_cli_cat_config_is_masked(stack, tmp_path) -> None:
    pod = web_pod(stack, stack.session_token("ci-agent"))
    result = eksgate_exec(stack, tmp_path, "-n", "shop", pod, "--", "cat", "/etc/app/config.yaml")
    assert result.returncode == 0, result.stderr
    assert b"listen: 0.0.0.0:80" in result.stdout and b"***MASKED***" in result.stdout
    for secret in (CONFIG_API_KEY, CONFIG_SECRET_KEY, DB_PASSWORD):
        assert secret.encode() not in result.stdout


def test_cli_exit_code_stderr_and_refusal(stack, tmp_path) -> None:
    pod = web_pod(stack, stack.session_token("ci-agent"))
    missing = eksgate_exec(stack, tmp_path, "-n", "shop", pod, "--", "cat", "/etc/app/missing")
    assert missing.returncode == 1 and missing.stdout == b""
    assert missing.stderr == b"cat: /etc/app/missing: No such file or directory\n"
    refused = eksgate_exec(stack, tmp_path, "-n", "shop", pod, "--", "cat", "/etc/passwd")
    assert refused.returncode == 1 and b"eksgate refused the exec (HTTP 403)" in refused.stderr
    unknown = eksgate_exec(stack, tmp_path, "-n", "shop", "no-such-pod", "--", "ls")
    assert unknown.returncode == 1 and b'pods "no-such-pod" not found' in unknown.stderr


def test_exec_is_recorded_and_replayed(stack, tmp_path) -> None:
    token = stack.session_token("ci-agent")
    session_id = jwt.decode(token, options={"verify_signature": False})["sid"]
    pod = web_pod(stack, token)
    http = urllib3.PoolManager(ca_certs=stack.gateway_ca_file)
    answer = http.request(
        "POST",
        f"{stack.gateway_url}/v1/exec/{stack.cluster}",
        json={"namespace": "shop", "pod": pod, "argv": ["cat", "/etc/app/config.yaml"]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status == 200, answer.data
    assert answer.json()["exit_code"] == 0
    bad = http.request(
        "POST",
        f"{stack.gateway_url}/v1/exec/{stack.cluster}",
        body=b"{nope",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert bad.status == 400 and "JSON object" in bad.json()["message"]
    env = {**os.environ, "EKSGATE_AUDITOR_TOKEN": stack.mint("auditor")}
    replay = subprocess.run(
        [
            sys.executable,
            "-m",
            "eksgate.cli",
            "sessions",
            "replay",
            session_id,
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
        timeout=120,
        check=False,
    )
    assert replay.returncode == 0, replay.stderr
    assert f"kubectl exec -n shop {pod} -- cat /etc/app/config.yaml" in replay.stdout
    assert "-> exit 0" in replay.stdout and "access_key_id: ***MASKED***" in replay.stdout
    assert CONFIG_API_KEY not in replay.stdout


@pytest.mark.skipif(not __import__("shutil").which("kubectl"), reason="kubectl is not installed")
def test_kubectl_plugin_reads_the_kubeconfig(stack, tmp_path) -> None:
    pod = web_pod(stack, stack.session_token("ci-agent"))
    plugin_dir = os.path.dirname(sys.executable)  # kubectl-eksgate is installed beside python
    env = {
        **os.environ,
        "KUBECONFIG": stack.kubeconfig,
        "XDG_CACHE_HOME": str(tmp_path),
        "PATH": plugin_dir + os.pathsep + os.environ.get("PATH", ""),
    }
    result = subprocess.run(
        ["kubectl", "eksgate", "exec", "-n", "shop", pod, "--", "ls", "/etc/app"],
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"config.yaml\nfeatures.txt\n"
    refused = subprocess.run(
        ["kubectl", "exec", "-n", "shop", pod, "--", "ls"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert refused.returncode != 0 and "eksgate exec" in refused.stderr


def test_an_approved_command_runs_exactly_once_with_exactly_that_argv(stack, tmp_path) -> None:
    import re

    pod = web_pod(stack, stack.session_token("ci-agent"))
    argv = ["sh", "-c", "echo migrated"]
    first = eksgate_exec(stack, tmp_path, "-n", "shop", pod, "--", *argv)
    assert first.returncode == 1 and b"approval required" in first.stderr, first.stderr
    approval_id = re.search(rb"request ([0-9a-f]{20})", first.stderr).group(1).decode()
    message = json.dumps(stack.slack_message_for(approval_id)["blocks"])
    assert "echo+migrated" in message or "echo migrated" in message  # the command, shown
    # Another command under the same rule is not covered by this approval.
    stack.click(approval_id, "eksgate_approve", "U0BOB")
    other = eksgate_exec(stack, tmp_path, "-n", "shop", pod, "--", "sh", "-c", "echo other")
    assert other.returncode == 1 and b"approval required" in other.stderr
    stack.clear_kube_calls()
    ran = eksgate_exec(stack, tmp_path, "-n", "shop", pod, "--", *argv)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout == b"migrated\n"
    execs = [c for c in stack.kube_calls() if c.get("subresource") == "exec"]
    assert len(execs) == 1
    again = eksgate_exec(stack, tmp_path, "-n", "shop", pod, "--", *argv)
    assert again.returncode == 1 and b"approval required" in again.stderr  # once is once
