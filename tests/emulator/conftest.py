"""Fixtures for the Kubernetes API emulator tests: one emulator per test module."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eksgate_local.kube_emulator import KubeEmulator, StaticTokenAuthenticator
from kubernetes import client

TOKEN = "emulator-test-token"
PRINCIPAL = "arn:aws:sts::123456789012:assumed-role/eksgate-test/alice"
OTHER_TOKEN = "emulator-other-token"
OTHER_PRINCIPAL = "arn:aws:sts::123456789012:assumed-role/eksgate-test/bob"

TABLE_ACCEPT = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)


@pytest.fixture(scope="module")
def emulator() -> Iterator[KubeEmulator]:
    auth = StaticTokenAuthenticator({TOKEN: PRINCIPAL, OTHER_TOKEN: OTHER_PRINCIPAL})
    with KubeEmulator(authenticate=auth) as emu:
        yield emu


@pytest.fixture(scope="module")
def ca_file(emulator: KubeEmulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("emulator-ca") / "ca.crt"
    path.write_bytes(emulator.ca_pem)
    return path


def make_api_client(emulator: KubeEmulator, ca_file: Path, token: str = TOKEN) -> client.ApiClient:
    """A real kubernetes.client.ApiClient that verifies the emulator's CA."""
    config = client.Configuration(host=emulator.url, api_key={"authorization": f"Bearer {token}"})
    config.ssl_ca_cert = str(ca_file)
    return client.ApiClient(config)


@pytest.fixture(scope="module")
def api_client(emulator: KubeEmulator, ca_file: Path) -> Iterator[client.ApiClient]:
    with make_api_client(emulator, ca_file) as api:
        yield api


@pytest.fixture(scope="module")
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture(scope="module")
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture
def namespace(core: client.CoreV1Api) -> Iterator[str]:
    """A fresh namespace per test, so tests sharing one emulator do not interfere."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def raw_request(
    api_client: client.ApiClient,
    method: str,
    path: str,
    *,
    accept: str | None = None,
    query: list[tuple[str, Any]] | None = None,
    body: Any = None,
    content_type: str | None = None,
) -> tuple[int, dict[str, str], Any]:
    """Send a request through the real client's transport; returns (status, headers, body)."""
    headers: dict[str, str] = {}
    if accept:
        headers["Accept"] = accept
    if content_type:
        headers["Content-Type"] = content_type
    params = api_client.param_serialize(
        method,
        path,
        query_params=query or [],
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    resp = api_client.call_api(*params)
    data = resp.read()
    text = data.decode() if isinstance(data, bytes) else data
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        parsed = text
    return resp.status, dict(resp.getheaders()), parsed


def configmap(
    name: str, data: dict[str, str] | None = None, labels: dict[str, str] | None = None
) -> client.V1ConfigMap:
    return client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=name, labels=labels), data=data or {"k": "v"}
    )


def deployment(name: str, image: str = "nginx:1.27", replicas: int = 1) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1DeploymentSpec(
            replicas=replicas,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name=name, image=image)]),
            ),
        ),
    )
