"""The gateway against a realistic cluster with no subprocess or socket: the emulator's
in-process transport stands where the HTTPS upstream stands."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from eksgate_local.kube_emulator import KubeEmulator, parse_eks_token
from eksgate_local.kube_emulator.in_process import InProcessUpstream
from eksgate_local.kube_emulator.seed import SENSITIVE_VALUES

from chalicelib.config import DEFAULT_POLICY_DIR, ClusterConfig
from chalicelib.credentials.eks_token import AwsCredentials
from chalicelib.credentials.session_token import SessionTokenCodec
from chalicelib.credentials.signing_keys import SigningKey
from chalicelib.gateway.clusters import ClusterEndpoint
from chalicelib.gateway.exchange import GatewayLimits, IncomingRequest
from chalicelib.gateway.forward import Forwarder
from chalicelib.gateway.pipeline import Gateway
from chalicelib.identity import Identity
from chalicelib.policy import load_policies

AGENT = Identity(
    "repo:acme/shop:environment:production",
    "https://oidc.eksgate.local",
    claims={"repository": "acme/shop", "environment": "production"},
)
ROLE_KEY = "ASIAINPROCESSROLE"


class Keys:
    key = SigningKey("k1", b"k" * 32)

    def current(self):
        return self.key

    def by_kid(self, kid):
        return self.key if kid == "k1" else None


class Clusters:
    def names(self):
        return ("demo",)

    def endpoint(self, name):
        return ClusterEndpoint(name, "https://in-process", b"", ClusterConfig(name, "us-east-1"))


class Roles:
    def credentials(self, request):
        return AwsCredentials(ROLE_KEY, "secret", "token", datetime.now(UTC) + timedelta(hours=1))


class Audit:
    def __getattr__(self, kind):
        return lambda *args, **kwargs: None


def principal_of(token: str) -> str | None:
    """The access key the gateway's EKS token was signed with (structure checked)."""
    return parse_eks_token(token).access_key_id


@pytest.fixture()
def cluster():
    return KubeEmulator(principal_of)  # seeded, never started: no port, no thread


def gateway(cluster: KubeEmulator) -> Gateway:
    return Gateway(
        SessionTokenCodec(Keys()),
        load_policies(DEFAULT_POLICY_DIR),
        Forwarder(Clusters(), Roles(), InProcessUpstream(cluster)),
        Audit(),
        None,
        GatewayLimits(1 << 20, 2),
    )


def incoming(path: str, query=None) -> IncomingRequest:
    token, _ = SessionTokenCodec(Keys()).issue(
        AGENT, "demo", "ci-agent", 600, {"repository": "acme/shop"}
    )
    return IncomingRequest(
        "demo",
        "GET",
        path,
        query or {},
        {"authorization": f"Bearer {token}", "accept": "application/json"},
        None,
        29.0,
    )


def test_the_gateway_lists_the_seeded_pods_with_the_role_s_credential(cluster):
    answer = gateway(cluster).handle(incoming("/api/v1/namespaces/shop/pods"))
    assert answer.status == 200
    pods = json.loads(answer.body)
    assert pods["kind"] == "PodList" and pods["items"]
    [call] = cluster.calls
    assert call.principal == ROLE_KEY and call.verb == "list" and call.namespace == "shop"


def test_secrets_come_back_masked_through_the_real_handler(cluster):
    answer = gateway(cluster).handle(incoming("/api/v1/namespaces/shop/secrets/db-credentials"))
    assert answer.status == 200
    for value in SENSITIVE_VALUES:
        assert value not in answer.body
        assert base64.b64encode(value.encode()).decode() not in answer.body


def test_a_missing_object_is_the_emulator_s_own_status(cluster):
    answer = gateway(cluster).handle(incoming("/api/v1/namespaces/shop/pods/nope"))
    assert answer.status == 404
    assert json.loads(answer.body)["reason"] == "NotFound"


def test_a_watch_ends_at_its_timeout_and_returns_whole_events(cluster):
    answer = gateway(cluster).handle(incoming("/api/v1/namespaces/shop/pods", {"watch": ["true"]}))
    assert answer.status == 200
    events = [json.loads(line) for line in answer.body.strip().splitlines()]
    assert events and all(event["type"] == "ADDED" for event in events)
