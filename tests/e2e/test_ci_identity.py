"""CI identity with no glue: `eksgate token` gets the job's OIDC token itself.

A local stand-in of the GitHub Actions runner's token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL,
checked bearer request token, `audience` parameter) mints tokens with the local stack's
issuer; the real gateway verifies them. Renewal is tested after the first OIDC token has
expired, as in a job that runs longer than one token lives.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import urllib3

from tests.e2e.conftest import gateway_flags
from tests.loopback import Answer, LoopbackServer, Request, json_answer

pytestmark = pytest.mark.e2e

REQUEST_TOKEN = "runner-request-token-for-this-job"
LEEWAY = 30  # the gateway's clock-skew allowance on `exp`


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class GitHubTokenStandIn:
    """GET /_apis/.../idtoken?api-version=2.0&audience=A -> {"value": "<JWT>"}."""

    def __init__(self, stack) -> None:
        self.stack = stack
        self.issued: list[str] = []
        self.audiences: list[str] = []
        self.next_times: list[tuple[float, int]] = []  # (iat, ttl) for the next tokens
        self.server = LoopbackServer(self._answer).start()

    def _answer(self, request: Request) -> Answer:
        if request.header("Authorization") != f"bearer {REQUEST_TOKEN}":
            return json_answer(401, {"message": "bad request token"})
        query = request.query
        if request.path != "/_apis/pipelines/1/runs/7/idtoken" or "api-version" not in query:
            return json_answer(404, {"message": "unknown path"})
        audience = query.get("audience", "")
        issued_at, ttl = self.next_times.pop(0) if self.next_times else (time.time(), 300)
        token = self.stack.mint("ci-agent", audience=audience, now=issued_at, ttl_seconds=ttl)
        self.issued.append(token)
        self.audiences.append(audience)
        return json_answer(200, {"value": token})

    @property
    def request_url(self) -> str:
        return f"{self.server.url}/_apis/pipelines/1/runs/7/idtoken?api-version=2.0"

    def stop(self) -> None:
        self.server.close()


@pytest.fixture
def standin(stack):
    running = GitHubTokenStandIn(stack)
    yield running
    running.stop()


def eksgate_token(stack, cache: Path, *args: str, env: dict | None = None):
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ACTIONS_ID_TOKEN", "EKSGATE_OIDC", "KUBERNETES_EXEC"))
    }
    environment.update({"XDG_CACHE_HOME": str(cache), **(env or {})})
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "eksgate.cli",
            "token",
            *gateway_flags(stack),
            *args,
        ],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )


def github_env(standin) -> dict:
    return {
        "ACTIONS_ID_TOKEN_REQUEST_URL": standin.request_url,
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": REQUEST_TOKEN,
    }


def cached_files(cache: Path) -> list[Path]:
    return sorted((cache / "eksgate" / "credentials").glob("*.json"))


def make_due_for_renewal(cache: Path) -> None:
    """What fourteen minutes do to the cached session: it is within the refresh margin."""
    for path in cached_files(cache):
        credential = json.loads(path.read_text())
        soon = datetime.now(UTC) + timedelta(seconds=30)
        credential["status"]["expirationTimestamp"] = soon.strftime("%Y-%m-%dT%H:%M:%SZ")
        path.write_text(json.dumps(credential))


def gateway_lists_pods(stack, session_token: str) -> int:
    http = urllib3.PoolManager(ca_certs=stack.gateway_ca_file)
    answer = http.request(
        "GET",
        f"{stack.gateway_url}/k8s/{stack.cluster}/api/v1/namespaces/shop/pods",
        headers={"Authorization": f"Bearer {session_token}"},
    )
    return answer.status


def broker_accepts(stack, oidc_token: str) -> int:
    http = urllib3.PoolManager(ca_certs=stack.gateway_ca_file)
    return http.request(
        "POST",
        f"{stack.gateway_url}/v1/token",
        json={"cluster": stack.cluster},
        headers={"Authorization": f"Bearer {oidc_token}"},
    ).status


def test_github_actions_job_renews_its_session_after_the_first_oidc_token_expired(
    stack, standin, tmp_path
):
    cache = tmp_path / "cache"
    # The first OIDC token is near the end of its life: valid for the broker (with its
    # leeway) for a few seconds only.
    now = time.time()
    standin.next_times.append((now - 300, 300 - 18))
    first = eksgate_token(stack, cache, "--github-actions", env=github_env(standin))
    assert first.returncode == 0, first.stderr
    first_session = json.loads(first.stdout)["status"]["token"]
    assert standin.audiences == ["eksgate"] and len(standin.issued) == 1
    assert gateway_lists_pods(stack, first_session) == 200
    # No token, request token or OIDC token is written in the cache, only the session.
    stored = "".join(p.read_text() for p in cached_files(cache))
    assert REQUEST_TOKEN not in stored and standin.issued[0] not in stored

    # Warm: the same job asks again and the runner is not called.
    again = eksgate_token(stack, cache, "--github-actions", env=github_env(standin))
    assert json.loads(again.stdout)["status"]["token"] == first_session
    assert len(standin.issued) == 1

    # Let the first OIDC token expire for good, then let the session come due.
    time.sleep(max(0.0, claims_of(standin.issued[0])["exp"] + LEEWAY + 2 - time.time()))
    assert broker_accepts(stack, standin.issued[0]) == 401
    make_due_for_renewal(cache)
    renewed = eksgate_token(stack, cache, "--github-actions", env=github_env(standin))
    assert renewed.returncode == 0, renewed.stderr
    renewed_session = json.loads(renewed.stdout)["status"]["token"]
    assert len(standin.issued) == 2 and renewed_session != first_session
    assert gateway_lists_pods(stack, renewed_session) == 200


def test_the_audience_is_configurable_and_a_wrong_one_is_refused_by_the_broker(
    stack, standin, tmp_path
):
    result = eksgate_token(
        stack,
        tmp_path,
        "--github-actions",
        "--oidc-audience",
        "sts.amazonaws.com",
        env=github_env(standin),
    )
    assert standin.audiences == ["sts.amazonaws.com"]
    assert result.returncode == 1 and "refused the token request (HTTP 401)" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_wrong_request_token_is_a_clear_error(stack, standin, tmp_path):
    env = {**github_env(standin), "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "stolen"}
    result = eksgate_token(stack, tmp_path, "--github-actions", env=env)
    assert result.returncode == 1 and "HTTP 401" in result.stderr
    assert "id-token: write" in result.stderr and "stolen" not in result.stderr
    assert standin.issued == []


def test_a_token_file_refreshed_by_another_process_is_read_at_each_renewal(stack, tmp_path):
    """A projected service account token: the kubelet rewrites the file; we re-read it."""
    cache, token_file = tmp_path / "cache", tmp_path / "token"
    token_file.write_text(stack.mint("ci-agent"))
    first = eksgate_token(stack, cache, "--oidc-token-file", str(token_file))
    assert first.returncode == 0, first.stderr
    # Rotated to a token that has already expired: the next renewal must read it and fail...
    token_file.write_text(stack.mint("ci-agent", now=time.time() - 900, ttl_seconds=600))
    make_due_for_renewal(cache)
    stale = eksgate_token(stack, cache, "--oidc-token-file", str(token_file))
    assert stale.returncode == 1 and "HTTP 401" in stale.stderr
    # ...and a fresh rotation renews the session.
    token_file.write_text(stack.mint("ci-agent"))
    renewed = eksgate_token(stack, cache, "--oidc-token-file", str(token_file))
    assert renewed.returncode == 0, renewed.stderr
    assert (
        json.loads(renewed.stdout)["status"]["token"] != json.loads(first.stdout)["status"]["token"]
    )


def test_gitlab_id_tokens_come_from_the_variable_the_flag_names(stack, tmp_path):
    env = {"GITLAB_EKSGATE_ID_TOKEN": stack.mint("ci-agent")}
    result = eksgate_token(stack, tmp_path, "--oidc-token-env", "GITLAB_EKSGATE_ID_TOKEN", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["kind"] == "ExecCredential"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_in_a_github_actions_job_needs_no_glue(stack, standin, tmp_path):
    """What action.yml sets up: a kubeconfig whose plugin asks the runner itself."""
    kubeconfig = tmp_path / "kubeconfig"
    env = {**os.environ, **github_env(standin), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    written = subprocess.run(
        [
            sys.executable,
            "-m",
            "eksgate.cli",
            "kubeconfig",
            *gateway_flags(stack),
            "--github-actions",
            "--merge",
            str(kubeconfig),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert written.returncode == 0, written.stderr
    config = kubeconfig.read_text().replace(
        "command: eksgate", f"command: {Path(sys.executable).parent / 'eksgate'}"
    )
    kubeconfig.write_text(config)
    ca = Path(stack.gateway_ca_file).read_bytes()
    result = subprocess.run(
        [
            "kubectl",
            "--kubeconfig",
            str(kubeconfig),
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
        env=env,
        timeout=120,
    )
    assert ca and result.returncode == 0, result.stderr
    assert "pod/" in result.stdout and len(standin.issued) == 1
