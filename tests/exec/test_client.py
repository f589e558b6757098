"""The exec client over real WebSockets against the emulator: v5 and v4, stdin, exit codes,
deadline cuts, bounds, binary output and the cluster's refusals."""

from __future__ import annotations

import time

import pytest
from eksgate_local.kube_emulator import KubeEmulator
from eksgate_local.kube_emulator.exec_commands import CONFIG_API_KEY, pseudo_random_bytes

from chalicelib.errors import BadGateway, BadRequest, NotFound
from chalicelib.exec import client as exec_client
from chalicelib.exec.client import ExecRefused, ExecTarget, WebSocketExecClient
from chalicelib.gateway.clusters import ClusterEndpoint

from .conftest import TOKEN, pod_named

V4 = ("v4.channel.k8s.io",)


@pytest.fixture
def v4_only(emulator: KubeEmulator):
    emulator.exec_protocols = V4
    yield
    emulator.exec_protocols = ("v5.channel.k8s.io", "v4.channel.k8s.io")


def run(
    cluster, emulator, argv, *, pod="web-", stdin=None, seconds=20.0, token=TOKEN, container=None
):
    target = ExecTarget("shop", pod_named(emulator, "shop", pod), container, tuple(argv))
    return WebSocketExecClient().run(cluster, token, target, stdin, time.monotonic() + seconds)


def test_v5_cat_config(cluster: ClusterEndpoint, emulator: KubeEmulator) -> None:
    result = run(cluster, emulator, ["cat", "/etc/app/config.yaml"])
    assert result.protocol == "v5.channel.k8s.io"
    assert CONFIG_API_KEY.encode() in result.stdout  # the client does not mask; the service does
    assert (result.exit_code, result.outcome, result.stderr) == (0, "exited", b"")
    assert result.remote_process == "exited with code 0"


def test_v4_fallback_exit_code_and_stderr(cluster, emulator, v4_only) -> None:
    result = run(cluster, emulator, ["cat", "/etc/missing"])
    assert result.protocol == "v4.channel.k8s.io"
    assert result.exit_code == 1 and result.outcome == "exited"
    assert result.stderr == b"cat: /etc/missing: No such file or directory\n"


@pytest.mark.parametrize("code", [0, 1, 3, 42, 255])
def test_exit_codes(cluster, emulator, code: int) -> None:
    assert run(cluster, emulator, ["sh", "-c", f"exit {code}"]).exit_code == code


def test_command_not_found_is_127(cluster, emulator) -> None:
    result = run(cluster, emulator, ["no-such-binary"])
    assert result.exit_code == 127 and b"executable file not found" in result.stderr


def test_v5_stdin_is_sent_then_closed(cluster, emulator) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB, binary
    result = run(cluster, emulator, ["wc", "-c"], stdin=data)
    assert result.stdout == f"{len(data)}\n".encode() and result.stdin_closed
    echoed = run(cluster, emulator, ["cat"], stdin=b"line one\n\x00\xff")
    assert echoed.stdout == b"line one\n\x00\xff" and echoed.exit_code == 0


def test_stdin_over_the_limit_is_refused(cluster, emulator) -> None:
    with pytest.raises(BadRequest, match="stdin is over the limit"):
        run(cluster, emulator, ["cat"], stdin=b"x" * (exec_client.MAX_STDIN_BYTES + 1))


def test_v4_stdin_cannot_be_closed_so_a_reader_is_cut(cluster, emulator, v4_only) -> None:
    result = run(cluster, emulator, ["cat"], stdin=b"partial\n", seconds=3.0)
    assert result.outcome == "cut" and not result.stdin_closed
    assert result.stdout == b"partial\n"  # what it printed before the deadline
    assert result.exit_code is None and "still running" in result.remote_process


def test_deadline_cut_keeps_output_so_far(cluster, emulator) -> None:
    result = run(cluster, emulator, ["tail", "-f", "/etc/app/features.txt"], seconds=3.0)
    assert result.outcome == "cut" and result.exit_code is None
    assert result.stdout == b"checkout-v2=on\nreviews=off\n"
    assert "cut at the gateway's deadline" in result.error
    silent = run(cluster, emulator, ["sleep", "3600"], seconds=2.0)
    assert silent.outcome == "cut" and silent.stdout == b""


def test_huge_and_binary_output_is_bounded_and_counted(cluster, emulator, monkeypatch) -> None:
    monkeypatch.setattr(exec_client, "MAX_OUTPUT_BYTES", 100_000)
    pod = pod_named(emulator, "shop", "web-")
    result = run(cluster, emulator, ["head", "-c", "300000", "/dev/urandom"])
    expected = b"".join(pseudo_random_bytes(pod, 300_000))
    assert result.stdout == expected[:100_000] and result.stdout_cut_bytes == 200_000
    assert result.exit_code == 0


def test_refusals(cluster, emulator) -> None:
    target = ExecTarget("shop", "no-such-pod", None, ("ls",))
    with pytest.raises(NotFound, match='pods "no-such-pod" not found'):
        WebSocketExecClient().run(cluster, TOKEN, target, None, time.monotonic() + 10)
    with pytest.raises(BadRequest, match="container zz is not valid"):
        run(cluster, emulator, ["ls"], container="zz")
    with pytest.raises(ExecRefused, match="Unauthorized"):
        run(cluster, emulator, ["ls"], token="wrong")


def test_wrong_ca_is_refused(cluster: ClusterEndpoint, emulator) -> None:
    other = KubeEmulator(authenticate=lambda t: None, seed=False)  # never started: only its CA
    wrong = ClusterEndpoint(cluster.name, cluster.url, other.ca_pem, cluster.config)
    with pytest.raises(BadGateway, match="failed verification"):
        run(wrong, emulator, ["ls"])


def test_a_server_that_refuses_the_upgrade(cluster, emulator) -> None:
    emulator.exec_protocols = ()
    try:
        with pytest.raises(BadRequest, match="requested protocol"):
            run(cluster, emulator, ["ls"])
    finally:
        emulator.exec_protocols = ("v5.channel.k8s.io", "v4.channel.k8s.io")
