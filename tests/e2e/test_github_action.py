"""The composite GitHub Action (action.yml): its kubeconfig step, run as a runner runs it.

The step's script runs under bash with the inputs as the runner passes them (environment
variables) and the runner's files (GITHUB_ENV, GITHUB_OUTPUT), against the local stack and
a stand-in of the runner's OIDC token endpoint. The install step is pip installing this
repository, which the test environment already did.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.e2e.test_ci_identity import REQUEST_TOKEN, GitHubTokenStandIn

pytestmark = pytest.mark.e2e

ACTION = yaml.safe_load((Path(__file__).parents[2] / "action.yml").read_text())


def step(step_id: str) -> dict:
    return next(s for s in ACTION["runs"]["steps"] if s.get("id") == step_id)


def run_step(step_id: str, inputs: dict, env: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run one step's script with ${{ inputs.x }} resolved as the runner resolves them."""
    defaults = {name: spec.get("default", "") for name, spec in ACTION["inputs"].items()}
    values = {**defaults, **inputs}
    step_env = {
        name: re.sub(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}", lambda m: str(values[m.group(1)]), text)
        for name, text in step(step_id).get("env", {}).items()
    }
    assert not any("${{" in value for value in step_env.values())
    files = {name: tmp_path / name.lower() for name in ("GITHUB_ENV", "GITHUB_OUTPUT")}
    for path in files.values():
        path.write_text("")
    return subprocess.run(
        ["bash", "-c", step(step_id)["run"]],
        capture_output=True,
        text=True,
        timeout=120,
        env={
            **env,
            **step_env,
            **{k: str(v) for k, v in files.items()},
            "RUNNER_TEMP": str(tmp_path / "runner-temp"),
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        },
    )


@pytest.fixture
def standin(stack):
    running = GitHubTokenStandIn(stack)
    yield running
    running.stop()


def test_the_action_writes_a_kubeconfig_that_kubectl_uses_with_no_glue(stack, standin, tmp_path):
    env = {
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "ACTIONS_ID_TOKEN_REQUEST_URL": standin.request_url,
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": REQUEST_TOKEN,
    }
    inputs = {
        "cluster": stack.cluster,
        "gateway": stack.gateway_url,
        "ca-file": stack.gateway_ca_file,
    }
    result = run_step("kubeconfig", inputs, env, tmp_path)
    assert result.returncode == 0, result.stderr
    kubeconfig = tmp_path / "runner-temp" / "eksgate" / "kubeconfig"
    assert (tmp_path / "github_env").read_text() == f"KUBECONFIG={kubeconfig}\n"
    assert (tmp_path / "github_output").read_text() == f"kubeconfig={kubeconfig}\n"
    assert len(standin.issued) == 1 and standin.audiences == ["eksgate"]  # verified early
    plugin = yaml.safe_load(kubeconfig.read_text())["users"][0]["user"]["exec"]
    assert "--github-actions" in plugin["args"] and REQUEST_TOKEN not in kubeconfig.read_text()
    if shutil.which("kubectl"):
        listing = subprocess.run(
            [
                "kubectl",
                "--certificate-authority",
                stack.gateway_ca_file,
                "get",
                "pods",
                "-n",
                "shop",
                "-o",
                "name",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env={
                **os.environ,
                **env,
                "KUBECONFIG": str(kubeconfig),
                "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            },
        )
        assert listing.returncode == 0, listing.stderr
        assert "pod/" in listing.stdout and len(standin.issued) == 1  # the cached session


def test_the_action_without_id_token_permission_says_what_to_add(stack, tmp_path):
    result = run_step(
        "kubeconfig",
        {"cluster": stack.cluster, "gateway": stack.gateway_url},
        {"HOME": str(tmp_path)},
        tmp_path,
    )
    assert result.returncode == 1 and "id-token: write" in result.stdout


def test_inputs_never_become_shell_code(stack, standin, tmp_path):
    env = {
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "ACTIONS_ID_TOKEN_REQUEST_URL": standin.request_url,
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": REQUEST_TOKEN,
    }
    marker = tmp_path / "pwned"
    inputs = {
        "cluster": f"demo$(touch {marker})",
        "gateway": stack.gateway_url,
        "ca-file": stack.gateway_ca_file,
        "verify": "false",
    }
    run_step("kubeconfig", inputs, env, tmp_path)
    assert not marker.exists()
