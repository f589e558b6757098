"""``eksgate token``'s cache: the warm fast path, its keys, refresh and recovery."""

from __future__ import annotations

import base64
import calendar
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from eksgate import token_cmd, token_fast
from eksgate.api_client import CliError


def jwt_like(claims: dict) -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln"


def credential(token: str, expires: datetime) -> dict:
    return {
        "apiVersion": token_fast.V1BETA1,
        "kind": "ExecCredential",
        "spec": {},
        "status": {"token": token, "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ")},
    }


@pytest.fixture
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("KUBERNETES_EXEC_INFO", raising=False)
    return tmp_path / "cache" / "eksgate" / "credentials"


def run_cli(*args: str, env: dict | None = None, **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("capture_output", True)
    return subprocess.run(
        [sys.executable, "-m", "eksgate.cli", *args],
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
        **kwargs,
    )


@pytest.mark.parametrize(
    "text",
    [
        "1970-01-01T00:00:00Z",
        "2000-02-29T23:59:59Z",
        "2026-11-29T01:02:03Z",
        "2100-03-01T00:00:00Z",
    ],
)
def test_rfc3339_epoch_agrees_with_the_calendar(text):
    expected = calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))
    assert token_fast.rfc3339_epoch(text) == expected


@pytest.mark.parametrize(
    "text", ["", "2026-11-29 01:02:03Z", "2026-11-29T01:02:03+00:00", "x" * 20]
)
def test_rfc3339_epoch_refuses_other_shapes(text):
    assert token_fast.rfc3339_epoch(text) is None


def test_fast_path_parses_both_option_spellings():
    options = token_fast.parse_token_args(
        ["--cluster=demo", "--gateway", "https://g", "--no-cache"]
    )
    assert options == {"--cluster": "demo", "--gateway": "https://g", "--no-cache": True}


@pytest.mark.parametrize(
    "argv",
    [
        ["--cluster", "demo"],  # no gateway: argparse reports it
        ["--cluster", "demo", "--gateway", "g", "--bogus"],
        ["--cluster", "demo", "--gateway", "g", "--mode", "sideways"],
        ["--cluster", "demo", "--gateway", "g", "--cluster", "other"],
        ["--cluster", "demo", "--gateway"],
        ["--help"],
    ],
)
def test_fast_path_leaves_anything_unusual_to_argparse(argv):
    assert token_fast.parse_token_args(argv) is None


def test_volatile_claims_do_not_change_the_key_but_identity_claims_do():
    base = {"iss": "https://i", "sub": "repo:acme/shop", "environment": "production"}
    first = jwt_like({**base, "iat": 1, "exp": 2, "jti": "a"})
    again = jwt_like({**base, "iat": 5, "exp": 9, "jti": "b"})
    staging = jwt_like({**base, "environment": "staging", "iat": 1, "exp": 2})
    key = token_cmd.cache_key(first, "demo", "https://g/", "gateway", token_fast.V1BETA1)
    assert key == token_cmd.cache_key(again, "demo", "https://g", "gateway", token_fast.V1BETA1)
    assert key != token_cmd.cache_key(staging, "demo", "https://g", "gateway", token_fast.V1BETA1)
    assert key != token_cmd.cache_key(first, "prod", "https://g", "gateway", token_fast.V1BETA1)


def test_github_identity_separates_jobs_and_audiences_and_never_holds_the_token():
    one = token_fast.github_identity("https://r/idtoken?api-version=2.0", "request-1", "eksgate")
    assert "request-1" not in one
    assert one != token_fast.github_identity(
        "https://r/idtoken?api-version=2.0", "request-2", "eksgate"
    )
    assert one != token_fast.github_identity(
        "https://r/idtoken?api-version=2.0", "request-1", "other"
    )


def store(cache_home: Path, token: str, key_token: str, expires: datetime) -> Path:
    key = token_cmd.cache_key(key_token, "demo", "https://g", "gateway", token_fast.V1BETA1)
    path = cache_home / f"{key}.json"
    token_cmd.store_cached(path, credential(token, expires))
    return path


def test_warm_cache_answers_without_importing_the_heavy_libraries(cache_home):
    oidc = jwt_like({"iss": "https://i", "sub": "agent"})
    store(cache_home, "cached-session", oidc, datetime.now(UTC) + timedelta(minutes=10))
    probe = (
        "import sys; from eksgate.cli import main; code = main({!r}); "
        "heavy = [m for m in ('jwt', 'urllib3', 'yaml', 'jsonschema', 'boto3', 'cryptography', "
        "'argparse', 'chalicelib', '_hashlib', 'typing', 'datetime') if m in sys.modules]; "
        "print('HEAVY', heavy, file=sys.stderr); sys.exit(code)"
    ).format(["token", "--cluster", "demo", "--gateway", "https://g"])
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "EKSGATE_OIDC_TOKEN": oidc,
            "XDG_CACHE_HOME": str(cache_home.parents[1]),
        },
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"]["token"] == "cached-session"
    assert "HEAVY []" in result.stderr


def test_expiring_or_loosened_cache_entries_are_not_served(cache_home):
    oidc = jwt_like({"iss": "https://i", "sub": "agent"})
    now = datetime.now(UTC)
    path = store(cache_home, "old", oidc, now + timedelta(seconds=30))
    assert token_fast.cached_credential_text(str(path), now.timestamp()) is None
    path = store(cache_home, "fresh", oidc, now + timedelta(minutes=10))
    assert token_fast.cached_credential_text(str(path), now.timestamp()) is not None
    os.chmod(path, 0o644)
    assert token_fast.cached_credential_text(str(path), now.timestamp()) is None


def test_a_kubectl_asking_again_gets_a_renewed_credential(cache_home, monkeypatch):
    """kubectl runs the plugin once per command; asking again means a 401: renew."""
    oidc = jwt_like({"iss": "https://i", "sub": "agent"})
    path = store(cache_home, "rejected", oidc, datetime.now(UTC) + timedelta(minutes=10))
    issued = []

    def broker(gateway, token, cluster, mode, api_version, ca_file=None):
        issued.append(token)
        return credential(f"new-{len(issued)}", datetime.now(UTC) + timedelta(minutes=10))

    monkeypatch.setattr(token_cmd, "request_credential", broker)
    source, target = token_cmd.OidcSource(token=oidc), token_cmd.Target("https://g", "demo")
    first = token_cmd.credential_for(source, target, plugin_marker="kubectl-1")
    assert first["status"]["token"] == "rejected" and issued == []
    other = token_cmd.credential_for(source, target, plugin_marker="kubectl-2")
    assert other["status"]["token"] == "rejected" and issued == []
    again = token_cmd.credential_for(source, target, plugin_marker="kubectl-1")
    assert again["status"]["token"] == "new-1" and issued == [oidc]
    # The renewed entry has been served to no one else yet: another kubectl gets it.
    assert (
        token_cmd.credential_for(source, target, plugin_marker="kubectl-3")["status"]["token"]
        == "new-1"
    )
    assert json.loads(path.read_text())["status"]["token"] == "new-1"


def test_force_refresh_replaces_a_valid_cache_entry(cache_home, monkeypatch):
    oidc = jwt_like({"iss": "https://i", "sub": "agent"})
    path = store(cache_home, "cached", oidc, datetime.now(UTC) + timedelta(minutes=10))
    monkeypatch.setattr(
        token_cmd,
        "request_credential",
        lambda *a, **k: credential("fresh", datetime.now(UTC) + timedelta(minutes=10)),
    )
    source, target = token_cmd.OidcSource(token=oidc), token_cmd.Target("https://g", "demo")
    assert token_cmd.credential_for(source, target)["status"]["token"] == "cached"
    forced = token_cmd.credential_for(source, target, force_refresh=True)
    assert forced["status"]["token"] == "fresh"
    assert json.loads(path.read_text())["status"]["token"] == "fresh"


def test_cache_clear_removes_every_credential(cache_home):
    oidc = jwt_like({"iss": "https://i", "sub": "agent"})
    path = store(cache_home, "x", oidc, datetime.now(UTC) + timedelta(minutes=10))
    token_fast.note_served(str(path), "kubectl-1")
    result = run_cli("cache", "clear", env={"XDG_CACHE_HOME": str(cache_home.parents[1])})
    assert result.returncode == 0 and "removed 1 cached credential" in result.stderr
    assert list(cache_home.iterdir()) == []


def test_token_file_is_read_afresh_and_empty_files_are_refused(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("first\n")
    source = token_cmd.OidcSource(token_file=str(token_file))
    assert source.read() == "first"
    token_file.write_text("second")
    assert source.read() == "second"
    token_file.write_text("")
    with pytest.raises(CliError, match="is empty"):
        source.read()


def test_github_actions_without_the_runner_variables_says_what_to_set(monkeypatch):
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_URL", raising=False)
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", raising=False)
    with pytest.raises(CliError, match="id-token: write"):
        token_cmd.OidcSource(github_actions=True).identity()


def test_version_prints_the_package_version():
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("eksgate ")


def test_a_closed_pipe_is_no_traceback(cache_home):
    oidc = jwt_like({"iss": "https://i", "sub": "agent"})
    store(cache_home, "t" * 200_000, oidc, datetime.now(UTC) + timedelta(minutes=10))
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before we write, as after `head -c1`
    try:
        result = run_cli(
            "token",
            "--cluster",
            "demo",
            "--gateway",
            "https://g",
            env={"EKSGATE_OIDC_TOKEN": oidc, "XDG_CACHE_HOME": str(cache_home.parents[1])},
            stdout=write_end,
            stderr=subprocess.PIPE,
            capture_output=False,
        )
    finally:
        os.close(write_end)
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr
    assert result.returncode == 141


def test_head_reading_one_byte_gets_no_traceback(cache_home):
    oidc = jwt_like({"iss": "https://i", "sub": "agent"})
    store(cache_home, "t" * 200_000, oidc, datetime.now(UTC) + timedelta(minutes=10))
    result = subprocess.run(
        f"{sys.executable} -m eksgate.cli token --cluster demo --gateway https://g | head -c1",
        shell=True,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "EKSGATE_OIDC_TOKEN": oidc,
            "XDG_CACHE_HOME": str(cache_home.parents[1]),
        },
        timeout=60,
    )
    assert result.stdout == "{" and "Traceback" not in result.stderr


def test_a_github_actions_job_with_a_warm_cache_asks_the_runner_nothing(cache_home):
    env = {
        "ACTIONS_ID_TOKEN_REQUEST_URL": "http://127.0.0.1:9/idtoken?api-version=2.0",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "job-request-token",
        "XDG_CACHE_HOME": str(cache_home.parents[1]),
    }
    identity = token_fast.github_identity(
        env["ACTIONS_ID_TOKEN_REQUEST_URL"], env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"], "eksgate"
    )
    key = token_fast.cache_key(identity, "demo", "https://g", "gateway", token_fast.V1BETA1)
    expires = datetime.now(UTC) + timedelta(minutes=10)
    token_cmd.store_cached(cache_home / f"{key}.json", credential("job-session", expires))
    args = ("token", "--cluster", "demo", "--gateway", "https://g", "--github-actions")
    result = run_cli(*args, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"]["token"] == "job-session"
    # Another audience is another credential: the runner (unreachable here) is asked.
    other = run_cli(*args, "--oidc-audience", "other", env=env)
    assert other.returncode == 1 and "GitHub Actions token endpoint" in other.stderr
