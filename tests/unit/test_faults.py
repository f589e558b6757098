"""Faults between two writes: what the caller is told, and what happens to an approval.

The gateway must tell the truth (never "not carried out" when it may have been), give back a
once-approval whose request never reached the cluster, bound every forward by one deadline,
and keep AWS internals out of what callers read.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from chalicelib.approvals.model import Approval
from chalicelib.audit.store import AuditUnavailable
from chalicelib.config import DEFAULT_POLICY_DIR
from chalicelib.credentials.session_token import SessionTokenCodec
from chalicelib.errors import AnswerWithheld, BadGateway, GatewayTimeout, ServiceUnavailable
from chalicelib.gateway.exchange import GatewayLimits
from chalicelib.gateway.forward import Forwarder
from chalicelib.gateway.pipeline import Gateway
from chalicelib.gateway.upstream import UpstreamRequest, _read
from chalicelib.identity import Identity
from chalicelib.policy import load_policies
from tests.approvals.conftest import sample_approval
from tests.unit.test_proxy import Clusters, FakeUpstream, Keys, RecordingAudit, Roles, incoming

pytestmark = pytest.mark.adversarial

ALICE = Identity(
    "user-alice",
    "https://oidc.eksgate.local",
    email="alice@example.com",
    claims={"groups": ["engineering"]},
)
SANDBOX = "/api/v1/namespaces/default/configmaps/app"
CHANGE = "/apis/apps/v1/namespaces/shop/deployments/web"


class FakeGate:
    """An approval gate that has an approved once-approval for everything."""

    def __init__(self) -> None:
        self.approval = sample_approval(status="used", used_at=1714565100)
        self.given_back: list[Approval] = []

    def find(self, exchange: Any, decision: Any) -> Approval:
        return self.approval

    def give_back(self, exchange: Any, approval: Approval) -> None:
        self.given_back.append(approval)


class FailingRoles(Roles):
    def credentials(self, request):
        raise ServiceUnavailable(
            "eksgate could not take on the policy's role, so nothing was "
            "sent; the gateway's log says why"
        )


def engineer_token() -> str:
    token, _ = SessionTokenCodec(Keys()).issue(
        ALICE, "demo", "engineers", 600, {"groups": "engineering"}
    )
    return token


def gateway(upstream, audit=None, approvals=None, roles=None) -> Gateway:
    return Gateway(
        SessionTokenCodec(Keys()),
        load_policies(DEFAULT_POLICY_DIR),
        Forwarder(Clusters(), roles or Roles(), upstream),
        audit or RecordingAudit(),
        approvals,
        GatewayLimits(4096, 20),
    )


def patch(path: str = SANDBOX):
    return incoming(
        path,
        method="PATCH",
        token=engineer_token(),
        body=b'{"data":{"a":"b"}}',
        headers={"content-type": "application/merge-patch+json"},
    )


def test_a_write_whose_answer_cannot_be_recorded_is_reported_as_carried_out():
    upstream = FakeUpstream()
    with pytest.raises(AnswerWithheld) as withheld:
        gateway(upstream, audit=RecordingAudit(fail_on="response")).handle(patch())
    assert upstream.sent, "the write reached the cluster"
    assert withheld.value.status == 500  # not a 503 that reads as "not carried out"
    assert "may have been carried out" in withheld.value.message
    assert "not forwarded" not in withheld.value.message


def test_a_write_cut_by_the_deadline_says_it_may_have_run():
    upstream = FakeUpstream(error=GatewayTimeout("the cluster did not finish its answer in time"))
    with pytest.raises(GatewayTimeout) as timeout:
        gateway(upstream).handle(patch())
    assert "may have carried out this patch" in timeout.value.message


def test_a_refused_connection_is_a_502_that_sent_nothing():
    refused = BadGateway(
        "cannot connect to cluster 'demo': the connection was refused or failed; nothing was sent",
        nothing_sent=True,
    )
    with pytest.raises(BadGateway) as error:
        gateway(FakeUpstream(error=refused)).handle(patch())
    assert error.value.status == 502 and "may have" not in error.value.message


@pytest.mark.parametrize("fault", ["audit", "sts", "connection"])
def test_a_once_approval_is_given_back_when_its_request_never_left(fault):
    gate = FakeGate()
    upstream = FakeUpstream(
        error=BadGateway("refused", nothing_sent=True) if fault == "connection" else None
    )
    gw = gateway(
        upstream,
        audit=RecordingAudit(fail_on="request" if fault == "audit" else None),
        approvals=gate,
        roles=FailingRoles() if fault == "sts" else None,
    )
    with pytest.raises((AuditUnavailable, ServiceUnavailable, BadGateway)):
        gw.handle(patch(CHANGE))
    assert gate.given_back == [gate.approval]
    assert fault == "connection" or upstream.sent == []


def test_a_once_approval_is_kept_used_when_its_request_may_have_run():
    gate = FakeGate()
    gw = gateway(
        FakeUpstream(error=GatewayTimeout("the cluster did not answer in time")), approvals=gate
    )
    with pytest.raises(GatewayTimeout):
        gw.handle(patch(CHANGE))
    assert gate.given_back == []


class DrippingResponse:
    """A cluster answer that sends one byte at a time, forever."""

    status = 200

    def __init__(self) -> None:
        self.closed = False
        self.headers = {"content-type": "application/json"}

    def stream(self, size):
        while not self.closed:
            time.sleep(0.05)
            yield b" "

    def close(self):
        self.closed = True

    def drain_conn(self):
        self.closed = True

    def getheaders(self):
        return self.headers


def test_a_dripping_cluster_is_cut_at_the_one_deadline():
    request = UpstreamRequest("GET", "/api/v1/pods", {}, None, False, time.monotonic() + 0.3)
    started = time.monotonic()
    with pytest.raises(GatewayTimeout):
        _read(DrippingResponse(), request, 1 << 20)
    assert time.monotonic() - started < 5  # bounded, not "never"


def test_unavailable_approvals_name_no_table():
    import boto3
    from moto import mock_aws

    from chalicelib.approvals.errors import ApprovalsUnavailable
    from chalicelib.approvals.store import DynamoApprovalStore

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        store = DynamoApprovalStore(client, "prod-eksgate-approvals-table")
        with pytest.raises(ApprovalsUnavailable) as error:
            store.get("0123456789abcdef0123")
    assert "prod-eksgate-approvals-table" not in error.value.message
    assert "ResourceNotFound" not in error.value.message


def test_an_unassumable_role_names_no_arn():
    from chalicelib.credentials.role_credentials import RoleCredentialCache, role_session_for

    class BrokenSts:
        def assume_role(self, **kwargs):
            from botocore.exceptions import ClientError

            raise ClientError(
                {"Error": {"Code": "AccessDenied", "Message": "arn:aws:iam::1:x"}}, "AssumeRole"
            )

    cache = RoleCredentialCache(BrokenSts())
    with pytest.raises(ServiceUnavailable) as error:
        cache.credentials(
            role_session_for(
                ALICE, "arn:aws:iam::123456789012:role/secret-role", "engineers", "demo"
            )
        )
    assert "arn:aws" not in error.value.message and "AccessDenied" not in error.value.message


def test_a_real_refused_connection_is_a_502_that_sent_nothing():
    import socket

    from chalicelib.config import ClusterConfig
    from chalicelib.gateway.clusters import ClusterEndpoint
    from chalicelib.gateway.upstream import HttpsUpstream

    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cluster = ClusterEndpoint("demo", f"https://127.0.0.1:{port}", b"", ClusterConfig("demo", "x"))
    request = UpstreamRequest("GET", "/version", {}, None, False, time.monotonic() + 5)
    with pytest.raises(BadGateway) as refused:
        HttpsUpstream().send(cluster, request, 1024)
    assert refused.value.status == 502 and refused.value.nothing_sent
    assert "did not answer in time" not in refused.value.message
