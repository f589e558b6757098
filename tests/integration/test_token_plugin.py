"""`eksgate token` as kubectl runs it: against a live gateway, with its on-disk cache."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest
from eksgate_local.gateway_server import LocalApiGateway

import app as app_module
from chalicelib.services import build_services


@pytest.fixture()
def gateway(settings, aws):
    app_module._services = build_services(settings, aws)
    server = LocalApiGateway(app_module.app).start()
    yield server
    server.stop()
    app_module._services = None


def plugin(gateway_url, token, cache_home, *extra, exec_info=None):
    env = {**os.environ, "EKSGATE_OIDC_TOKEN": token, "XDG_CACHE_HOME": str(cache_home)}
    env.pop("KUBERNETES_EXEC_INFO", None)
    if exec_info:
        env["KUBERNETES_EXEC_INFO"] = json.dumps(exec_info)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "eksgate.cli",
            "token",
            "--cluster",
            "demo",
            "--gateway",
            gateway_url,
            *extra,
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_credential_is_cached_0600_and_reused_without_the_broker(gateway, oidc_issuer, tmp_path):
    token = oidc_issuer.mint("ci-agent")
    first = plugin(gateway.url, token, tmp_path)
    assert first.returncode == 0, first.stderr
    [cached] = (tmp_path / "eksgate" / "credentials").iterdir()
    assert stat.S_IMODE(cached.stat().st_mode) == 0o600
    assert stat.S_IMODE(cached.parent.stat().st_mode) == 0o700
    gateway.stop()  # the broker is gone: only the cache can answer now
    second = plugin(gateway.url, oidc_issuer.mint("ci-agent"), tmp_path)
    assert second.returncode == 0 and json.loads(second.stdout) == json.loads(first.stdout)


def test_a_different_identity_does_not_reuse_the_cache(gateway, oidc_issuer, tmp_path):
    assert plugin(gateway.url, oidc_issuer.mint("ci-agent"), tmp_path).returncode == 0
    other = plugin(gateway.url, oidc_issuer.mint("ci-agent", environment="staging"), tmp_path)
    assert other.returncode == 1 and "no policy grants" in other.stderr


def test_loosened_cache_permissions_are_not_trusted(gateway, oidc_issuer, tmp_path):
    first = plugin(gateway.url, oidc_issuer.mint("ci-agent"), tmp_path)
    [cached] = (tmp_path / "eksgate" / "credentials").iterdir()
    cached.chmod(0o644)
    second = plugin(gateway.url, oidc_issuer.mint("ci-agent"), tmp_path)
    assert json.loads(second.stdout) != json.loads(first.stdout)  # a fresh credential


def test_kubernetes_exec_info_selects_the_credential_version(gateway, oidc_issuer, tmp_path):
    result = plugin(
        gateway.url,
        oidc_issuer.mint("ci-agent"),
        tmp_path,
        exec_info={
            "apiVersion": "client.authentication.k8s.io/v1",
            "kind": "ExecCredential",
            "spec": {"interactive": False},
        },
    )
    assert result.returncode == 0
    assert json.loads(result.stdout)["apiVersion"] == "client.authentication.k8s.io/v1"
    bad = plugin(
        gateway.url,
        oidc_issuer.mint("ci-agent"),
        tmp_path,
        exec_info={"apiVersion": "client.authentication.k8s.io/v1alpha1"},
    )
    assert bad.returncode == 1 and "supports" in bad.stderr


def test_refusals_are_printed_for_kubectl_to_show(gateway, oidc_issuer, tmp_path):
    result = plugin(gateway.url, oidc_issuer.mint("ci-agent"), tmp_path, "--mode", "direct")
    assert result.returncode == 1
    assert result.stderr.startswith("eksgate: eksgate refused the token request (HTTP 403)")
    assert not result.stdout
