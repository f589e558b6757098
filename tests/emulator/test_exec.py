"""``pods/exec`` over WebSocket against the emulator: v5 and v4, kube's refusals, kubectl."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import urllib.parse
from pathlib import Path

import pytest
from eksgate_local.kube_emulator import KubeEmulator, write_kubeconfig
from eksgate_local.kube_emulator.exec_commands import CONFIG_API_KEY
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from .conftest import TOKEN


def pod_named(emulator: KubeEmulator, namespace: str, prefix: str) -> str:
    return min(
        p["metadata"]["name"]
        for p in emulator.store.list(("", "pods"), namespace)
        if p["metadata"]["name"].startswith(prefix)
    )


def tls_context(emulator: KubeEmulator) -> ssl.SSLContext:
    context = ssl.create_default_context(cadata=emulator.ca_pem.decode())
    # websockets' threaded sync client reads and writes one TLS connection from two threads;
    # under TLS 1.3 (post-handshake session tickets) that occasionally loses a record. These
    # tests are about the emulator, so they stay on TLS 1.2 (the gateway's client does not
    # share the problem: see chalicelib/exec/client.py).
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    return context


def run(
    emulator,
    pod,
    argv,
    *,
    protocol="v5.channel.k8s.io",
    stdin=None,
    namespace="shop",
    container=None,
):
    """One exec through a real WebSocket; returns (chosen protocol, {channel: bytes})."""
    query = [("command", a) for a in argv] + [("stdout", "true"), ("stderr", "true")]
    if stdin is not None:
        query.append(("stdin", "true"))
    if container:
        query.append(("container", container))
    url = (
        f"wss://{emulator.server_address}/api/v1/namespaces/{namespace}/pods/{pod}/exec?"
        + urllib.parse.urlencode(query)
    )
    context = tls_context(emulator)
    channels: dict[int, bytes] = {}
    with connect(
        url,
        ssl=context,
        subprotocols=[protocol],
        additional_headers={"Authorization": f"Bearer {TOKEN}"},
        open_timeout=10,
    ) as ws:
        if stdin is not None:
            ws.send(b"\x00" + stdin)
            if protocol.startswith("v5"):
                ws.send(b"\xff\x00")
        for message in ws:
            assert isinstance(message, bytes)
            channels[message[0]] = channels.get(message[0], b"") + message[1:]
        return ws.subprotocol, channels


def test_cat_planted_config_v5(emulator: KubeEmulator) -> None:
    web = pod_named(emulator, "shop", "web-")
    protocol, out = run(emulator, web, ["cat", "/etc/app/config.yaml"])
    assert protocol == "v5.channel.k8s.io"
    assert CONFIG_API_KEY.encode() in out[1]
    assert json.loads(out[3]) == {"metadata": {}, "status": "Success"}


def test_exit_code_and_stderr_v4(emulator: KubeEmulator) -> None:
    web = pod_named(emulator, "shop", "web-")
    protocol, out = run(emulator, web, ["cat", "/nope"], protocol="v4.channel.k8s.io")
    assert protocol == "v4.channel.k8s.io"
    assert out[2] == b"cat: /nope: No such file or directory\n"
    status = json.loads(out[3])
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "1"}]


def test_stdin_closed_by_v5_close_channel(emulator: KubeEmulator) -> None:
    web = pod_named(emulator, "shop", "web-")
    _, out = run(emulator, web, ["wc", "-c"], stdin=b"x" * 100_000)
    assert out[1] == b"100000\n"


def test_env_resolves_secret_refs_and_binary_output(emulator: KubeEmulator) -> None:
    worker = pod_named(emulator, "shop", "worker-")
    _, out = run(emulator, worker, ["env"])
    assert b"DB_PASSWORD=s3cr3t-db-pass\n" in out[1]
    _, out = run(emulator, worker, ["head", "-c", "70000", "/dev/urandom"])
    assert len(out[1]) == 70000
    assert (
        run(emulator, worker, ["head", "-c", "70000", "/dev/urandom"])[1][1] == out[1]
    )  # deterministic


def test_ls_and_sh_exit(emulator: KubeEmulator) -> None:
    web = pod_named(emulator, "shop", "web-")
    assert run(emulator, web, ["ls", "/etc/app"])[1][1] == b"config.yaml\nfeatures.txt\n"
    status = json.loads(run(emulator, web, ["sh", "-c", "exit 7"])[1][3])
    assert status["details"]["causes"][0]["message"] == "7"


@pytest.mark.parametrize(
    ("pod", "container", "code", "message"),
    [
        ("no-such-pod", None, 404, 'pods "no-such-pod" not found'),
        (None, "zz", 400, "container zz is not valid for pod"),
    ],
)
def test_refusals_before_upgrade(emulator: KubeEmulator, pod, container, code, message) -> None:
    pod = pod or pod_named(emulator, "shop", "web-")
    with pytest.raises(InvalidStatus) as caught:
        run(emulator, pod, ["ls"], container=container)
    assert caught.value.response.status_code == code
    assert message in json.loads(caught.value.response.body)["message"]


def test_pod_not_running_is_refused(emulator: KubeEmulator) -> None:
    web = pod_named(emulator, "shop", "web-")
    pod = emulator.get_object("", "pods", "shop", web)
    pending = json.loads(json.dumps(pod))
    pending["metadata"]["name"] = "web-pending"
    pending["metadata"].pop("resourceVersion", None)
    pending["status"]["phase"] = "Succeeded"
    emulator.store.put(("", "pods"), pending)
    with pytest.raises(InvalidStatus) as caught:
        run(emulator, "web-pending", ["ls"])
    assert caught.value.response.status_code == 400
    assert "current phase is Succeeded" in json.loads(caught.value.response.body)["message"]


def test_unknown_subprotocol_is_refused(emulator: KubeEmulator) -> None:
    web = pod_named(emulator, "shop", "web-")
    with pytest.raises(InvalidStatus) as caught:
        run(emulator, web, ["ls"], protocol="v3.channel.k8s.io")
    assert caught.value.response.status_code == 400


def test_sleep_ends_when_client_leaves(emulator: KubeEmulator) -> None:
    web = pod_named(emulator, "shop", "web-")
    url = f"wss://{emulator.server_address}/api/v1/namespaces/shop/pods/{web}/exec?command=sleep&command=3600&stdout=true"
    context = tls_context(emulator)
    with (
        connect(
            url,
            ssl=context,
            subprotocols=["v5.channel.k8s.io"],
            additional_headers={"Authorization": f"Bearer {TOKEN}"},
        ) as ws,
        pytest.raises(TimeoutError),
    ):
        ws.recv(timeout=0.3)
    # The emulator's stop() (fixture teardown) joins handler threads: a stuck sleep would hang it.


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_plain_kubectl_exec(emulator: KubeEmulator, tmp_path: Path) -> None:
    config = write_kubeconfig(tmp_path / "config", emulator.url, emulator.ca_pem, TOKEN)
    web = pod_named(emulator, "shop", "web-")

    def kubectl(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["kubectl", "--kubeconfig", str(config), *args],
            input=stdin,
            capture_output=True,
            timeout=60,
            env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
            check=False,
        )

    result = kubectl("exec", "-n", "shop", web, "--", "cat", "/etc/app/config.yaml")
    assert result.returncode == 0 and CONFIG_API_KEY.encode() in result.stdout
    result = kubectl("exec", "-i", "-n", "shop", web, "--", "cat", stdin=b"piped\n")
    assert result.stdout == b"piped\n"
    result = kubectl("exec", "-n", "shop", web, "--", "sh", "-c", "exit 3")
    assert result.returncode == 3
    result = kubectl("exec", "-n", "shop", "missing", "--", "ls")
    assert result.returncode == 1 and b'pods "missing" not found' in result.stderr
