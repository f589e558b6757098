"""The emulator driven by the real kubectl binaries: the newest installed and the oldest
supported, each by its path (skipped where kubectl is not installed)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from eksgate_local.kube_emulator import KubeEmulator, write_kubeconfig

from tests.kubectl_versions import chosen

from .conftest import PRINCIPAL, TOKEN

pytestmark = pytest.mark.skipif(not chosen(), reason="kubectl is not installed")

MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: hello
  namespace: shop
  labels:
    app: hello
spec:
  replicas: 2
  selector:
    matchLabels:
      app: hello
  template:
    metadata:
      labels:
        app: hello
    spec:
      containers:
      - name: hello
        image: {image}
        ports:
        - containerPort: 8080
      - name: log-shipper
        image: fluent/fluent-bit:3.2
"""


@pytest.fixture(scope="module", params=sorted(chosen()))
def kubectl(
    request: pytest.FixtureRequest, emulator: KubeEmulator, tmp_path_factory: pytest.TempPathFactory
):
    binary = str(chosen()[request.param])
    home = tmp_path_factory.mktemp("kubectl")
    config = write_kubeconfig(home / "config", emulator.url, emulator.ca_pem, TOKEN)

    def run(
        *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [binary, "--kubeconfig", str(config), "--cache-dir", str(home / "cache"), *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            env={"HOME": str(home), "PATH": "/usr/bin:/bin"},
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    return run


def test_kubeconfig_is_private(emulator: KubeEmulator, tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "kc", emulator.url, emulator.ca_pem, TOKEN)
    assert path.stat().st_mode & 0o077 == 0


def test_get_pods(kubectl, emulator: KubeEmulator) -> None:
    emulator.clear_calls()
    out = kubectl("get", "pods", "-n", "shop").stdout.splitlines()
    assert out[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    web = [line.split() for line in out[1:] if line.startswith("web-")]
    assert len(web) == 2 and all(row[1:4] == ["1/1", "Running", "0"] for row in web)
    pod_calls = [c for c in emulator.calls if c.resource == "pods"]
    assert pod_calls and all(c.principal == PRINCIPAL and c.verb == "list" for c in pod_calls)


def test_get_json_and_logs(kubectl) -> None:
    secret = json.loads(
        kubectl("get", "secret", "db-credentials", "-n", "shop", "-o", "json").stdout
    )
    assert secret["kind"] == "Secret" and set(secret["data"]) == {"username", "password"}
    logs = kubectl("logs", "-n", "shop", "deployment/worker", "--tail=3").stdout
    assert len(logs.splitlines()) == 3
    assert (
        kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout == PRINCIPAL
    )


def test_apply_twice_then_delete(kubectl, emulator: KubeEmulator, tmp_path: Path) -> None:
    manifest = tmp_path / "hello.yaml"
    manifest.write_text(MANIFEST.format(image="nginx:1.26"))
    assert "deployment.apps/hello created" in kubectl("apply", "-f", str(manifest)).stdout
    first = json.loads(kubectl("get", "deployment", "hello", "-n", "shop", "-o", "json").stdout)
    assert "kubectl.kubernetes.io/last-applied-configuration" in first["metadata"]["annotations"]

    manifest.write_text(MANIFEST.format(image="nginx:1.27"))
    emulator.clear_calls()
    assert "deployment.apps/hello configured" in kubectl("apply", "-f", str(manifest)).stdout
    patches = [c for c in emulator.calls if c.verb == "patch"]
    assert len(patches) == 1 and patches[0].name == "hello" and patches[0].principal == PRINCIPAL

    second = json.loads(kubectl("get", "deployment", "hello", "-n", "shop", "-o", "json").stdout)
    images = {c["name"]: c["image"] for c in second["spec"]["template"]["spec"]["containers"]}
    assert images == {"hello": "nginx:1.27", "log-shipper": "fluent/fluent-bit:3.2"}
    assert second["metadata"]["generation"] == first["metadata"]["generation"] + 1
    assert (
        "successfully rolled out"
        in kubectl("rollout", "status", "deployment/hello", "-n", "shop", "--timeout=10s").stdout
    )

    # Unchanged manifest: kubectl sends no patch at all.
    assert "deployment.apps/hello unchanged" in kubectl("apply", "-f", str(manifest)).stdout

    pods = kubectl(
        "get",
        "pods",
        "-n",
        "shop",
        "-l",
        "app=hello",
        "-o",
        "jsonpath={.items[*].spec.containers[0].image}",
    ).stdout.split()
    assert pods == ["nginx:1.27", "nginx:1.27"]

    assert 'deployment.apps "hello" deleted' in kubectl("delete", "-f", str(manifest)).stdout
    missing = kubectl("get", "deployment", "hello", "-n", "shop", check=False)
    assert missing.returncode != 0 and 'deployments.apps "hello" not found' in missing.stderr
    assert kubectl("get", "pods", "-n", "shop", "-l", "app=hello", "-o", "name").stdout == ""


def test_dry_run_server_and_errors(kubectl) -> None:
    dry = kubectl(
        "create",
        "configmap",
        "dry",
        "-n",
        "shop",
        "--from-literal=a=b",
        "--dry-run=server",
        "-o",
        "json",
    )
    assert json.loads(dry.stdout)["data"] == {"a": "b"}
    assert kubectl("get", "configmap", "dry", "-n", "shop", check=False).returncode != 0
    dup = kubectl("create", "namespace", "shop", check=False)
    assert dup.returncode != 0 and 'namespaces "shop" already exists' in dup.stderr


def test_protobuf_bodies_from_typed_commands(kubectl, emulator: KubeEmulator) -> None:
    # create deployment / configmap / secret / namespace and auth can-i / whoami send protobuf
    # from 1.32 on; what is stored is what was asked for (replicas: 0 is not defaulted to 1)
    kubectl(
        "create", "deployment", "proto-web", "-n", "shop", "--image=nginx:1.27", "--port=80",
        "--replicas=0", "--", "nginx", "-g", "daemon off;",
    )  # fmt: skip
    deployment = emulator.get_object("apps", "deployments", "shop", "proto-web")
    assert deployment is not None and deployment["spec"]["replicas"] == 0
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "nginx:1.27"
    assert container["command"] == ["nginx", "-g", "daemon off;"]
    assert container["ports"][0]["containerPort"] == 80
    kubectl("delete", "deployment", "proto-web", "-n", "shop")
    kubectl("create", "secret", "generic", "proto-s", "-n", "shop", "--from-literal=k=v")
    secret = emulator.get_object("", "secrets", "shop", "proto-s")
    assert secret is not None and secret["data"] == {"k": "dg=="} and secret["type"] == "Opaque"
    kubectl("delete", "secret", "proto-s", "-n", "shop")
    listed = kubectl("auth", "can-i", "--list", "-n", "shop")
    assert "*.*" in listed.stdout
    kubectl("create", "configmap", "proto-cm", "-n", "shop", "--from-literal=colour=blue")
    stored = emulator.get_object("", "configmaps", "shop", "proto-cm")
    assert stored is not None and stored["data"] == {"colour": "blue"}
    kubectl("delete", "configmap", "proto-cm", "-n", "shop")
    assert (
        kubectl("auth", "can-i", "get", "pods", "-n", "shop", check=False).stdout.strip() == "yes"
    )
    assert (
        kubectl("auth", "whoami", "-o", "jsonpath={.status.userInfo.username}").stdout == PRINCIPAL
    )
