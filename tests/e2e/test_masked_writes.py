"""Nothing eksgate masks may be written back: kubectl round trips through the gateway.

What a caller reads is masked; a file saved from ``kubectl get -o yaml`` and written back whole
would replace the live values with the mask. These tests take the paths an engineer takes
(replace, apply, edit) with a ConfigMap and a Secret, and check both the refusal and that the
live values, read straight from the cluster, are unchanged; then the paths that do work.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import textwrap
import uuid

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from chalicelib.approvals.diff import HIDDEN_CHANGE
from chalicelib.credentials.eks_token import AwsCredentials, make_eks_token
from chalicelib.masking import MASK
from tests.e2e.conftest import KUBECTLS

# The newest kubectl installed, chosen by path (the PATH dispatcher picks by server version).
KUBECTL = str(KUBECTLS.get("newest") or shutil.which("kubectl") or "")
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.adversarial,
    pytest.mark.skipif(not KUBECTL, reason="kubectl not installed"),
]

PASSWORD = "hunter2-very-secret"


def kubectl(stack, *args, context="demo-engineer", editor=None):
    env = {**os.environ, "KUBECONFIG": stack.kubeconfig}
    if editor:
        env["KUBE_EDITOR"] = editor
    return subprocess.run(
        [KUBECTL, "--context", context, *args], capture_output=True, text=True, timeout=120, env=env
    )


def live(stack, path: str) -> dict:
    """The object as the cluster holds it, read with a credential of our own, not the gateway."""
    sts = stack.aws("sts")
    issued = sts.assume_role(
        RoleArn="arn:aws:iam::123456789012:role/e2e-inspector", RoleSessionName="e2e-inspector"
    )["Credentials"]
    token = make_eks_token(
        AwsCredentials(
            issued["AccessKeyId"],
            issued["SecretAccessKey"],
            issued["SessionToken"],
            issued["Expiration"],
        ),
        stack.cluster,
        "us-east-1",
    )
    with tempfile.NamedTemporaryFile("w", suffix=".pem", delete=False) as ca:
        ca.write(stack.kube_ca_pem)
    answer = urllib3.PoolManager(ca_certs=ca.name).request(
        "GET", stack.kube_url + path, headers={"Authorization": f"Bearer {token.token}"}
    )
    os.unlink(ca.name)
    assert answer.status == 200, answer.data
    return json.loads(answer.data)


def apply_manifest(stack, manifest: str, *args):
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as file:
        file.write(manifest)
    try:
        return kubectl(stack, *args, "-f", file.name)
    finally:
        os.unlink(file.name)


@pytest.fixture
def config_map(stack):
    name = f"app-{uuid.uuid4().hex[:6]}"
    created = apply_manifest(
        stack,
        textwrap.dedent(f"""\
        apiVersion: v1
        kind: ConfigMap
        metadata: {{name: {name}, namespace: default}}
        data:
          LOG_LEVEL: info
          DATABASE_URL: postgres://shop:{PASSWORD}@db:5432/shop
        """),
        "apply",
    )
    assert created.returncode == 0, created.stderr
    return name


@pytest.fixture
def secret(stack):
    name = f"creds-{uuid.uuid4().hex[:6]}"
    created = apply_manifest(
        stack,
        textwrap.dedent(f"""\
        apiVersion: v1
        kind: Secret
        metadata: {{name: {name}, namespace: default, labels: {{team: shop}}}}
        type: Opaque
        stringData: {{password: {PASSWORD}, username: shop}}
        """),
        "apply",
    )
    assert created.returncode == 0, created.stderr
    return name


def saved_and_changed(stack, kind: str, name: str, old: str, new: str) -> str:
    saved = kubectl(stack, "get", kind, name, "-n", "default", "-o", "yaml")
    assert saved.returncode == 0, saved.stderr
    assert MASK in saved.stdout or base64.b64encode(MASK.encode()).decode() in saved.stdout
    assert old in saved.stdout
    return saved.stdout.replace(old, new)


def assert_explained_refusal(result, *fields):
    assert result.returncode != 0
    assert "eksgate refused this write" in result.stderr, result.stderr
    assert "kubectl patch" in result.stderr
    for field in fields:
        assert field in result.stderr


def config_map_is_intact(stack, name: str, log_level: str = "info") -> None:
    data = live(stack, f"/api/v1/namespaces/default/configmaps/{name}")["data"]
    assert data == {
        "LOG_LEVEL": log_level,
        "DATABASE_URL": f"postgres://shop:{PASSWORD}@db:5432/shop",
    }


def secret_is_intact(stack, name: str) -> None:
    data = live(stack, f"/api/v1/namespaces/default/secrets/{name}")["data"]
    assert base64.b64decode(data["password"]).decode() == PASSWORD
    assert base64.b64decode(data["username"]).decode() == "shop"


@pytest.mark.parametrize("verb", ["replace", "apply"])
def test_a_saved_config_map_written_back_is_refused(stack, config_map, verb):
    changed = saved_and_changed(
        stack, "configmap", config_map, "LOG_LEVEL: info", "LOG_LEVEL: warn"
    )
    result = apply_manifest(stack, changed, verb)
    assert_explained_refusal(result, "last-applied-configuration")
    if verb == "replace":
        assert "data.DATABASE_URL" in result.stderr
    config_map_is_intact(stack, config_map)


@pytest.mark.parametrize("verb", ["replace", "apply"])
def test_a_saved_secret_written_back_is_refused(stack, secret, verb):
    changed = saved_and_changed(stack, "secret", secret, "team: shop", "team: payments")
    result = apply_manifest(stack, changed, verb)
    assert_explained_refusal(result)
    if verb == "replace":
        assert "data.password" in result.stderr
    secret_is_intact(stack, secret)
    labels = live(stack, f"/api/v1/namespaces/default/secrets/{secret}")["metadata"]["labels"]
    assert labels == {"team": "shop"}


def test_kubectl_edit_of_a_masked_value_is_refused_with_the_way_that_works(stack, config_map):
    # The editor changes the database host inside the masked URL: the edit's patch carries it.
    editor = "sed -i s/@db:5432/@db2:5432/"
    result = kubectl(stack, "edit", "configmap", config_map, "-n", "default", editor=editor)
    assert_explained_refusal(result, "data.DATABASE_URL")
    config_map_is_intact(stack, config_map)


def test_kubectl_edit_save_config_is_refused(stack, secret):
    # --save-config writes the edited (masked) object into the last-applied annotation.
    editor = "sed -i s/team:\\ shop/team:\\ web/"
    result = kubectl(
        stack, "edit", "secret", secret, "-n", "default", "--save-config", editor=editor
    )
    assert_explained_refusal(result, "kubectl edit sends back")
    secret_is_intact(stack, secret)


def test_kubectl_edit_of_other_fields_patches_only_them(stack, config_map, secret):
    """The path that works: kubectl edit sends a patch of the changed fields only."""
    edited = kubectl(
        stack,
        "edit",
        "configmap",
        config_map,
        "-n",
        "default",
        editor="sed -i s/LOG_LEVEL:\\ info/LOG_LEVEL:\\ debug/",
    )
    assert edited.returncode == 0, edited.stderr
    config_map_is_intact(stack, config_map, log_level="debug")
    relabelled = kubectl(
        stack,
        "edit",
        "secret",
        secret,
        "-n",
        "default",
        editor="sed -i s/team:\\ shop/team:\\ web/",
    )
    assert relabelled.returncode == 0, relabelled.stderr
    secret_is_intact(stack, secret)
    assert live(stack, f"/api/v1/namespaces/default/secrets/{secret}")["metadata"]["labels"] == {
        "team": "web"
    }


def test_a_patch_of_only_the_changed_field_keeps_the_masked_ones(stack, config_map, secret):
    patched = kubectl(
        stack,
        "patch",
        "configmap",
        config_map,
        "-n",
        "default",
        "--type",
        "merge",
        "-p",
        '{"data":{"LOG_LEVEL":"warn"}}',
    )
    assert patched.returncode == 0, patched.stderr
    config_map_is_intact(stack, config_map, log_level="warn")
    added = kubectl(
        stack,
        "patch",
        "secret",
        secret,
        "-n",
        "default",
        "--type",
        "merge",
        "-p",
        '{"stringData":{"api-key":"k-123"}}',
    )
    assert added.returncode == 0, added.stderr
    secret_is_intact(stack, secret)


def test_json_patch_and_client_bodies_carrying_the_mask_never_reach_the_cluster(
    stack, kube_config, config_map
):
    api = client.CoreV1Api(kube_config("engineer"))
    masked_b64 = base64.b64encode(MASK.encode()).decode()
    attempts = [
        lambda: api.patch_namespaced_config_map(
            config_map,
            "default",
            [{"op": "replace", "path": "/data/DATABASE_URL", "value": f"x={MASK}"}],
        ),
        lambda: api.patch_namespaced_config_map(
            config_map, "default", {"binaryData": {"blob": masked_b64}}
        ),
    ]
    stack.clear_kube_calls()
    for attempt in attempts:
        with pytest.raises(ApiException) as refused:
            attempt()
        body = json.loads(refused.value.body)
        assert refused.value.status == 400 and body["kind"] == "Status"
        assert body["details"]["causes"], body
    assert not [c for c in stack.kube_calls() if c["verb"] == "patch"]
    config_map_is_intact(stack, config_map)


def test_an_approval_whose_only_change_is_a_masked_value_shows_it(stack, kube_config):
    api = client.CoreV1Api(kube_config("engineer"))
    current = live(stack, "/api/v1/namespaces/shop/configmaps/shop-config")
    properties = current["data"]["application.properties"]
    password = properties.split("://")[1].split("@")[0].split(":")[1]
    changed = properties.replace(password, "a-new-password-nobody-saw")
    with pytest.raises(ApiException) as err:
        api.patch_namespaced_config_map(
            "shop-config", "shop", {"data": {"application.properties": changed}}
        )
    body = json.loads(err.value.body)
    text = json.dumps(stack.slack_message_for(body["details"]["name"])["blocks"])
    assert HIDDEN_CHANGE.replace(">", "&gt;") in text, text  # Slack's escaping of ">"
    assert "(no changes)" not in text and "a-new-password" not in text


def test_a_write_that_changes_nothing_needs_no_approval(stack):
    replicas = live(stack, "/apis/apps/v1/namespaces/shop/deployments/web")["spec"]["replicas"]
    posted = len(stack.slack_state()["messages"])
    stack.clear_kube_calls()
    result = kubectl(stack, "scale", "deployment/web", "-n", "shop", f"--replicas={replicas}")
    assert result.returncode == 0, result.stderr
    assert "would change nothing" in result.stderr  # kubectl prints the gateway's Warning
    assert len(stack.slack_state()["messages"]) == posted
    writes = [c for c in stack.kube_calls() if c["verb"] in ("patch", "update")]
    assert writes and all(c["dry_run"] for c in writes)  # only the gateway's own dry run
