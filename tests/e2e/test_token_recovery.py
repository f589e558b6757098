"""A cached credential the gateway rejects (a new signing key, a restarted stack) recovers.

kubectl cannot tell the exec plugin why it runs it again, but it runs it again only after a
401: the plugin renews when the same kubectl process asks twice, so the command after a
rejection works (every kubectl installed here, oldest to newest, and the PATH dispatcher).
`--force-refresh` and `cache clear` are the manual ways.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import gateway_flags

pytestmark = pytest.mark.e2e


def spoil_cached_credentials(cache: Path) -> None:
    """What a rotated signing key does to a cached session: its signature no longer holds."""
    for path in (cache / "eksgate" / "credentials").glob("*.json"):
        credential = json.loads(path.read_text())
        head, body, signature = credential["status"]["token"].split(".")
        signature = ("A" if signature[0] != "A" else "B") + signature[1:]
        credential["status"]["token"] = f"{head}.{body}.{signature}"
        path.write_text(json.dumps(credential))


@pytest.fixture
def agent_kubeconfig(stack, tmp_path):
    token_file = tmp_path / "oidc-token"
    token_file.write_text(stack.mint("ci-agent"))
    kubeconfig = tmp_path / "kubeconfig"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "eksgate.cli",
            "kubeconfig",
            *gateway_flags(stack, token_file),
            "--merge",
            str(kubeconfig),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    eksgate = Path(sys.executable).parent / "eksgate"
    kubeconfig.write_text(kubeconfig.read_text().replace("command: eksgate", f"command: {eksgate}"))
    return kubeconfig, token_file


KUBECTL_DIR = Path("/usr/lib/google-cloud-sdk/bin")
VERSIONED = (
    sorted(
        (p.name for p in KUBECTL_DIR.glob("kubectl.1.*")), key=lambda n: int(n.rsplit(".", 1)[1])
    )
    if KUBECTL_DIR.is_dir()
    else []
)
# The kubectl on PATH, and every versioned one installed here (oldest to newest).
KUBECTLS = (["kubectl"] if shutil.which("kubectl") else []) + [
    str(KUBECTL_DIR / name) for name in VERSIONED
]


def kubectl(
    stack, kubeconfig: Path, cache: Path, *args: str, binary: str = "kubectl"
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            binary,
            "--kubeconfig",
            str(kubeconfig),
            "--certificate-authority",
            stack.gateway_ca_file,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "XDG_CACHE_HOME": str(cache)},
    )


@pytest.mark.skipif(not KUBECTLS, reason="kubectl is not installed")
@pytest.mark.parametrize("binary", KUBECTLS, ids=lambda b: Path(b).name)
def test_the_command_after_a_rejected_cached_credential_works(
    stack, agent_kubeconfig, tmp_path, binary
):
    kubeconfig, _ = agent_kubeconfig
    cache = tmp_path / "cache"
    first = kubectl(stack, kubeconfig, cache, "get", "pods", "-n", "shop", binary=binary)
    assert first.returncode == 0, first.stderr
    spoil_cached_credentials(cache)
    refused = kubectl(stack, kubeconfig, cache, "get", "pods", "-n", "shop", binary=binary)
    # kubectl fails once; gcloud's version dispatcher meets the 401 itself, asks again and
    # the command already works.
    assert refused.returncode == 0 or "Signature verification failed" in refused.stderr
    recovered = kubectl(
        stack, kubeconfig, cache, "get", "pods", "-n", "shop", "-o", "name", binary=binary
    )
    assert recovered.returncode == 0, recovered.stderr
    assert "pod/" in recovered.stdout


def eksgate_token(stack, token_file: Path, cache: Path, *args: str):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "eksgate.cli",
            "token",
            *gateway_flags(stack, token_file),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "XDG_CACHE_HOME": str(cache)},
    )


def test_force_refresh_and_cache_clear_replace_a_rejected_credential(stack, tmp_path):
    token_file, cache = tmp_path / "oidc-token", tmp_path / "cache"
    token_file.write_text(stack.mint("ci-agent"))
    first = json.loads(eksgate_token(stack, token_file, cache).stdout)["status"]["token"]
    spoil_cached_credentials(cache)
    spoiled = json.loads(eksgate_token(stack, token_file, cache).stdout)["status"]["token"]
    assert spoiled != first  # served from the cache, as it is
    forced = eksgate_token(stack, token_file, cache, "--force-refresh")
    fresh = json.loads(forced.stdout)["status"]["token"]
    assert fresh not in (first, spoiled)
    assert json.loads(eksgate_token(stack, token_file, cache).stdout)["status"]["token"] == fresh
    cleared = subprocess.run(
        [sys.executable, "-m", "eksgate.cli", "cache", "clear"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "XDG_CACHE_HOME": str(cache)},
    )
    assert cleared.returncode == 0 and "removed 1 cached credential" in cleared.stderr
    assert json.loads(eksgate_token(stack, token_file, cache).stdout)["status"]["token"] != fresh
