"""An emulator and its ClusterEndpoint, for the exec client and service tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eksgate_local.kube_emulator import KubeEmulator, StaticTokenAuthenticator

from chalicelib.config import ClusterConfig
from chalicelib.gateway.clusters import ClusterEndpoint

TOKEN = "k8s-aws-v1.exec-test-token"
PRINCIPAL = "arn:aws:sts::123456789012:assumed-role/eksgate-exec/alice"


@pytest.fixture(scope="module")
def emulator() -> Iterator[KubeEmulator]:
    with KubeEmulator(authenticate=StaticTokenAuthenticator({TOKEN: PRINCIPAL})) as emu:
        yield emu


@pytest.fixture
def cluster(emulator: KubeEmulator) -> ClusterEndpoint:
    config = ClusterConfig(name="local", region="eu-west-1", endpoint=emulator.url)
    return ClusterEndpoint(name="local", url=emulator.url, ca_pem=emulator.ca_pem, config=config)


def pod_named(emulator: KubeEmulator, namespace: str, prefix: str) -> str:
    return min(
        p["metadata"]["name"]
        for p in emulator.store.list(("", "pods"), namespace)
        if p["metadata"]["name"].startswith(prefix)
    )
