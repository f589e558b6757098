"""The local stack, started once per test session in its own process (`eksgate local up`).

Its own process keeps its environment (AWS_ENDPOINT_URL pointing at moto's server, ...) away
from the in-process moto tests; the tests reach it only through its public interfaces: the
gateway over HTTPS, the kubeconfig it writes, and its control endpoint.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import urllib3

from tests.kubectl_versions import chosen

WATCH_TIMEOUT = 3
KUBECTLS = chosen()  # the newest installed and the oldest supported, by path


@pytest.fixture(params=sorted(KUBECTLS))
def kubectl_binary(request) -> str:
    """Each chosen kubectl in turn (never the PATH dispatcher, which picks by server version)."""
    return str(KUBECTLS[request.param])


class Stack:
    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        self.http = urllib3.PoolManager()

    def __getattr__(self, name: str) -> Any:
        try:
            return self.state[name]
        except KeyError:
            raise AttributeError(name) from None

    def mint(self, identity: str | None = None, claims: dict | None = None, **overrides) -> str:
        body = {"identity": identity, "claims": claims or {}, "overrides": overrides}
        answer = self.http.request("POST", f"{self.control_url}/oidc/mint", json=body)
        return answer.json()["token"]

    def kube_calls(self) -> list[dict]:
        return self.http.request("GET", f"{self.control_url}/kube/calls").json()

    def clear_kube_calls(self) -> None:
        self.http.request("POST", f"{self.control_url}/kube/calls/clear")

    def slack_state(self) -> dict:
        return self.http.request("GET", f"{self.slack_url}_fake/state").json()

    def slack_message_for(self, approval_id: str) -> dict:
        for message in reversed(self.slack_state()["messages"]):
            if approval_id in json.dumps(message.get("blocks", [])):
                return message
        raise AssertionError(f"no Slack message for approval {approval_id}")

    def click(self, approval_id: str, action: str, user: str) -> dict:
        message = self.slack_message_for(approval_id)
        answer = self.http.request(
            "POST",
            f"{self.slack_url}_fake/click",
            json={"message_ts": message["ts"], "action_id": action, "user_id": user},
        )
        assert answer.status == 200, answer.data
        return answer.json()

    def aws(self, service: str):
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.aws_endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def session_token(self, identity: str = "ci-agent", **overrides) -> str:
        gateway = urllib3.PoolManager(ca_certs=self.gateway_ca_file)
        answer = gateway.request(
            "POST",
            f"{self.gateway_url}/v1/token",
            json={"cluster": self.cluster},
            headers={"Authorization": f"Bearer {self.mint(identity, **overrides)}"},
        )
        assert answer.status == 200, answer.data
        return answer.json()["status"]["token"]


@pytest.fixture(scope="session")
def stack():
    workdir = Path(tempfile.mkdtemp(prefix="eksgate-e2e-"))
    state_file = workdir / "state.json"
    log = (workdir / "stack.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "eksgate.cli",
            "local",
            "up",
            "--state-file",
            str(state_file),
            "--kubeconfig",
            str(workdir / "kubeconfig"),
            "--watch-timeout",
            str(WATCH_TIMEOUT),
            "--approval-wait",
            "1",
            "--quiet",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
        env={**os.environ, "XDG_CACHE_HOME": str(workdir / "cache")},
    )
    deadline = time.monotonic() + 90
    while not state_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("the local stack did not start:\n" + (workdir / "stack.log").read_text())
        time.sleep(0.1)
    running = Stack(json.loads(state_file.read_text()))
    yield running
    # After every test that used this stack: nothing stored may hold a secret or a token.
    leaks = stored_secrets(running)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("the local stack did not stop on SIGTERM")
    assert not leaks, f"stored items hold secrets or tokens: {leaks}"
    # `eksgate local up` removes its temporary folder (demo OIDC tokens) when it stops.
    assert not Path(running.workdir).exists(), f"{running.workdir} left behind"


def gateway_flags(stack: Stack, token_file: Path | None = None) -> list[str]:
    """The ``eksgate token``/``kubeconfig`` flags that point a command at this stack's gateway
    (and, given one, at a file holding the caller's OIDC token)."""
    flags = [
        "--cluster",
        stack.cluster,
        "--gateway",
        stack.gateway_url,
        "--ca-file",
        stack.gateway_ca_file,
    ]
    return flags + (["--oidc-token-file", str(token_file)] if token_file is not None else [])


def stored_item_texts(stack: Stack) -> list[str]:
    """Every item of every table as JSON text, and every compact audit item also unpacked:
    a search of the packed bytes alone would find nothing, whatever they hold."""
    import base64

    from chalicelib.audit.items import exported_from_item

    dynamodb = stack.aws("dynamodb")
    texts = []
    for table in dynamodb.list_tables()["TableNames"]:
        for page in dynamodb.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                texts.append(json.dumps(item, default=lambda b: base64.b64encode(b).decode()))
                if "z" in item and "v" in item:
                    # An item that does not unpack fails the test rather than hide anything.
                    texts.append(json.dumps(exported_from_item(item), ensure_ascii=False))
    return texts


def stored_secrets(stack: Stack) -> list[str]:
    """Every planted credential, its base64, EKS token or JWT found in any stored item."""
    import base64
    import re

    from eksgate_local.kube_emulator.seed import SENSITIVE_VALUES

    text = "\n".join(stored_item_texts(stack))
    found = [
        v for v in SENSITIVE_VALUES if v in text or base64.b64encode(v.encode()).decode() in text
    ]
    if "k8s-aws-v1." in text:
        found.append("an EKS token")
    if re.search(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.", text):
        found.append("a JWT")
    return found


@pytest.fixture(scope="session")
def kube_config(stack):
    """Python kubernetes client configuration factory for a demo identity's session token."""
    from kubernetes import client

    def make(identity: str = "ci-agent", token: str | None = None) -> client.ApiClient:
        configuration = client.Configuration()
        configuration.host = f"{stack.gateway_url}/k8s/{stack.cluster}"
        configuration.ssl_ca_cert = stack.gateway_ca_file
        configuration.api_key = {
            "authorization": f"Bearer {token or stack.session_token(identity)}"
        }
        return client.ApiClient(configuration)

    return make


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """``eksgate local demo`` run once, as the README's first command runs it: its result and
    the folder it ran in (``.eksgate-local/`` holds its log and its audit evidence)."""
    workdir = tmp_path_factory.mktemp("demo")
    result = subprocess.run(
        [sys.executable, "-m", "eksgate.cli", "local", "demo"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=workdir,
        env={**os.environ, "XDG_CACHE_HOME": str(workdir / "cache")},
    )
    return result, workdir
