"""Everyday kubectl through the gateway (issue 19): kubectl 1.32+'s protobuf bodies, restarts
under once-approvals, raw paths, honest refusals; the newest kubectl installed and, where the
client's version matters, the oldest supported, each chosen by path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import KUBECTLS, gateway_flags

# The newest kubectl installed, chosen by path (the PATH dispatcher picks by server version).
KUBECTL = str(KUBECTLS.get("newest") or shutil.which("kubectl") or "")
pytestmark = [pytest.mark.e2e, pytest.mark.skipif(not KUBECTL, reason="kubectl not installed")]


def kubectl(stack, *args, context="demo-ci-agent", binary=KUBECTL, kubeconfig=None):
    return subprocess.run(
        [binary, "--context", context, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KUBECONFIG": str(kubeconfig or stack.kubeconfig)},
    )


def latest_request(stack, verb: str, resource: str, namespace: str) -> dict:
    """The gateway's newest audit record of a ``verb`` request on ``resource`` in ``namespace``
    (a create names no object in its URL; the tests run one at a time)."""
    from chalicelib.audit.items import record_from_item

    dynamodb = stack.aws("dynamodb")
    found = []
    for table in dynamodb.list_tables()["TableNames"]:
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                # Stored compactly (chalicelib.audit.items): read as the record it holds.
                try:
                    record = record_from_item(item).to_json_dict()
                except (ValueError, TypeError, KeyError):
                    continue  # an item of another table (approvals, idempotency)
                request = record.get("request") or {}
                wanted = (verb, resource, namespace)
                if record.get("kind") == "request" and wanted == (
                    request.get("verb"),
                    request.get("resource"),
                    request.get("namespace"),
                ):
                    found.append(record)
    assert found, f"no {verb} of {resource} in {namespace} recorded"
    return max(found, key=lambda record: record["time"])


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


def test_kubectl_sees_a_current_eks_server(stack, kubectl_binary):
    result = kubectl(stack, "version", "-o", "json", binary=kubectl_binary)
    server = json.loads(result.stdout)["serverVersion"]
    # EKS reports its minor as "35+" and a gitVersion like v1.35.0-eks-3cfe0ce
    assert server["minor"].rstrip("+") == "35" and "-eks-" in server["gitVersion"]


def test_typed_creates_go_through_whatever_their_body_format(stack, kubectl_binary):
    # kubectl 1.32+ sends these bodies as protobuf, 1.31 as JSON: both are decided by the URL.
    suffix = Path(kubectl_binary).name.replace("kubectl.", "").replace(".", "")
    names = {"deployment": f"typed-web-{suffix}", "configmap": f"typed-cm-{suffix}"}
    names["secret"] = f"typed-secret-{suffix}"
    creates = {
        "deployment": ["--image=nginx:1.27", "--replicas=0", "--port=80"],
        "configmap": ["--from-literal=colour=blue"],
        "secret": ["generic", "--from-literal=password=typed-create-value"],
    }
    protobuf = int(suffix[1:]) >= 32
    for kind, args in creates.items():
        head = [kind, args[0]] if kind == "secret" else [kind]
        rest = args[1:] if kind == "secret" else args
        created = kubectl(
            stack,
            "create",
            *head,
            names[kind],
            "-n",
            "default",
            *rest,
            context="demo-engineer",
            binary=kubectl_binary,
        )
        assert created.returncode == 0, created.stderr
        assert "created" in created.stdout
        record = latest_request(stack, "create", f"{kind}s", "default")
        body = record["request_body"]
        assert body and body["size"] > 0, json.dumps(record, default=str)
        if protobuf or kind == "secret":  # recorded by its size only: no text, no hash
            assert "inline" not in body and "sha256" not in body, body
        else:
            assert names[kind] in body["inline"]
        assert "typed-create-value" not in json.dumps(record, default=str)
    replicas = kubectl(
        stack,
        "get",
        "deployment",
        names["deployment"],
        "-n",
        "default",
        "-o",
        "jsonpath={.spec.replicas}",
        context="demo-engineer",
        binary=kubectl_binary,
    )
    assert replicas.stdout == "0"  # a pointer set to zero arrives as zero, not defaulted
    for kind, name in names.items():
        deleted = kubectl(
            stack, "delete", kind, name, "-n", "default", context="demo-engineer",
            binary=kubectl_binary,
        )  # fmt: skip
        assert deleted.returncode == 0, deleted.stderr


def test_a_protobuf_create_waits_for_approval_with_a_diff_from_the_dry_run(stack):
    args = ("create", "deployment", "typed-approved", "-n", "shop", "--image=nginx:1.27")
    refused = kubectl(stack, *args, "--replicas=0")
    approval_id = approval_in(refused.stderr)
    blocks = json.dumps(stack.slack_message_for(approval_id)["blocks"])
    assert "typed-approved" in blocks and "nginx:1.27" in blocks  # the dry run's JSON answer
    stack.click(approval_id, "eksgate_approve", "U0BOB")
    stack.clear_kube_calls()
    created = kubectl(stack, *args, "--replicas=0")
    assert created.returncode == 0, created.stderr
    writes = [
        c
        for c in stack.kube_calls()
        if c["verb"] == "create" and c["resource"] == "deployments" and not c["dry_run"]
    ]
    assert len(writes) == 1


def test_kubectl_auth_whoami_names_the_verified_caller(stack, kubectl_binary):
    result = kubectl(stack, "auth", "whoami", "-o", "json", binary=kubectl_binary)
    assert result.returncode == 0, result.stderr
    user = json.loads(result.stdout)["status"]["userInfo"]
    assert user["username"] and "assumed-role" not in user["username"]
    assert user["extra"]["eksgate.io/policy"] == ["ci-agent"]
    assert user["extra"]["eksgate.io/cluster"] == [stack.cluster]


def test_a_cluster_path_typo_says_which_clusters_the_caller_may_use(stack, tmp_path):
    typo = tmp_path / "kubeconfig"
    typo.write_text(
        Path(stack.kubeconfig).read_text().replace(f"/k8s/{stack.cluster}", "/k8s/dmeo")
    )
    result = kubectl(stack, "get", "pods", "-n", "shop", kubeconfig=typo)
    assert result.returncode != 0
    assert "Warning: eksgate serves no cluster 'dmeo'" in result.stderr, result.stderr
    assert f"your policy may use: {stack.cluster}" in result.stderr
    assert "You must be logged in" not in result.stderr


def eksgate(*args: str, stdout=subprocess.PIPE, shell_tail: str = "", env=None):
    command = [sys.executable, "-m", "eksgate.cli", *args]
    if shell_tail:
        command = " ".join(f"'{part}'" for part in command) + shell_tail
    return subprocess.run(
        command,
        shell=bool(shell_tail),
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_eksgate_version_and_a_closed_pipe_print_no_traceback(stack, tmp_path):
    version = eksgate("--version")
    assert version.returncode == 0 and version.stdout.startswith("eksgate ")
    token_file = tmp_path / "oidc-token"
    token_file.write_text(stack.mint("ci-agent"))
    piped = eksgate(
        "token",
        *gateway_flags(stack, token_file),
        shell_tail=" | head -c1",
        env={"XDG_CACHE_HOME": str(tmp_path / "cache")},
    )
    assert piped.stdout == "{"
    assert "Traceback" not in piped.stderr and "BrokenPipe" not in piped.stderr
