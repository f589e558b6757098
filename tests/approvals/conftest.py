"""Approvals under test: moto DynamoDB, the local Slack fake, and a tiny interactivity endpoint.

The endpoint stands in for the app's Slack route: it verifies the signature on the raw body,
parses the interaction and hands it to ``ApprovalService.handle_interaction``, so a
``fake.click(...)`` travels the same way a real click does.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from eksgate_local.aws import atomic_dynamodb, create_tables
from eksgate_local.slack_fake import SlackFake
from eksgate_local.slack_fake_workspace import Workspace, default_workspace
from slack_sdk import WebClient

from chalicelib.approvals.fingerprint import ApprovalSubject
from chalicelib.approvals.model import Approval, ApprovalAsk
from chalicelib.approvals.service import ApprovalService, Timing
from chalicelib.approvals.store import DynamoApprovalStore
from chalicelib.errors import EksgateError
from chalicelib.identity import Identity
from chalicelib.kube.request import canonical_query, resolve
from chalicelib.policy.model import ApprovalSettings, Rule
from chalicelib.slack.directory import SlackDirectory
from chalicelib.slack.interactions import parse_interaction, verify_slack_request
from tests.loopback import Answer, LoopbackServer, Request, json_answer

SIGNING_SECRET = "approvals-test-signing-secret"
TABLES = {
    "AuditTable": "test-audit",
    "ApprovalsTable": "test-approvals",
    "IdempotencyTable": "test-idempotency",
}
CHANNEL = "#eksgate-approvals"
ALICE = Identity(
    subject="user-alice", issuer="https://oidc.eksgate.local", email="alice@example.com"
)
AGENT = Identity(
    subject="repo:acme/shop:ref:refs/heads/main",
    issuer="https://token.actions.githubusercontent.com",
)
PATCH_PATH = "/apis/apps/v1/namespaces/shop/deployments/web"
PATCH_BODY = b'{"spec":{"replicas":5}}'


class FakeClock:
    """Wall-clock time that a test can move forward (approval deadlines, grant windows)."""

    def __init__(self) -> None:
        import time

        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture()
def atomic_moto() -> Iterator[None]:
    """moto's DynamoDB answering one request at a time, as atomically as real DynamoDB.

    Locking only moto's backend methods left its answer serialisation unlocked, and about one
    run in ten of the thirty-approver race failed inside moto ("dictionary changed size during
    iteration"): a concurrency test would test moto, not our conditional writes.
    """
    with atomic_dynamodb():
        yield


@pytest.fixture()
def dynamodb(aws: Any, atomic_moto: None) -> Any:
    client = aws.client("dynamodb")
    create_tables(client, TABLES)
    return client


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def store(dynamodb: Any, clock: FakeClock) -> DynamoApprovalStore:
    return DynamoApprovalStore(dynamodb, TABLES["ApprovalsTable"], clock=clock)


@dataclass
class Endpoint:
    """The interactivity endpoint; ``service`` is what it dispatches to."""

    url: str = ""
    service: ApprovalService | None = None
    witness: Any = None  # what records decisions (the audit trail), when a test gives one
    answers: list[tuple[int, bytes]] = field(default_factory=list)


@pytest.fixture()
def endpoint() -> Iterator[Endpoint]:
    state = Endpoint()

    def answer(request: Request) -> Answer:
        """What the app's /slack/interactions route does, against the test's service."""
        try:
            verify_slack_request(SIGNING_SECRET, request.headers, request.body)
            assert state.service is not None
            decided = state.service.handle_interaction(
                parse_interaction(request.body), state.witness
            )
            reply = (200, b"" if decided is None else json.dumps(decided).encode())
        except EksgateError as error:
            reply = json_answer(error.status, {"message": error.message})
        state.answers.append(reply)
        return reply

    # Thirty clicks at once must not overflow the listen backlog.
    with LoopbackServer(answer, backlog=128) as server:
        state.url = f"{server.url}/slack/interactions"
        yield state


def start_fake(endpoint: Endpoint, workspace: Workspace | None = None) -> SlackFake:
    return SlackFake(
        signing_secret=SIGNING_SECRET,
        interactions_url=endpoint.url,
        workspace=workspace or default_workspace(),
    ).start()


@pytest.fixture()
def slack(endpoint: Endpoint) -> Iterator[SlackFake]:
    fake = start_fake(endpoint)
    try:
        yield fake
    finally:
        fake.stop()


def web_client(fake: SlackFake) -> WebClient:
    # No retries: a test of "Slack is down" should not wait for them.
    return WebClient(token=fake.bot_token, base_url=fake.base_url, timeout=3, retry_handlers=[])


@dataclass
class Harness:
    """Everything a service test touches."""

    service: ApprovalService
    store: DynamoApprovalStore
    slack: SlackFake
    clock: FakeClock
    endpoint: Endpoint

    def ask(
        self,
        rule: Rule | None = None,
        *,
        requester: Identity = ALICE,
        path: str = PATCH_PATH,
        body: bytes = PATCH_BODY,
        method: str = "PATCH",
        query: str = "fieldManager=kubectl",
    ) -> Approval:
        """The gateway asking for approval of a request."""
        return self.service.request(
            self.ask_for(rule, requester, path, body, method, query),
            "--- current\n+++ proposed\n-  replicas: 2\n+  replicas: 5",
        )

    @staticmethod
    def ask_for(rule, requester, path, body, method, query) -> ApprovalAsk:
        request = resolve(method, path, query)
        subject = ApprovalSubject(
            method,
            "",
            request.path,
            canonical_query(query),
            hashlib.sha256(body or b"").hexdigest(),
        )
        return ApprovalAsk(
            requester, "prod-eu", "engineers", rule or patch_rule(), request, subject
        )

    def get(self, approval_id: str) -> Approval:
        """The stored approval, which must exist."""
        return must(self.store.get(approval_id))

    def usable(
        self,
        rule: Rule | None = None,
        *,
        requester: Identity = ALICE,
        path: str = PATCH_PATH,
        body: bytes = PATCH_BODY,
        method: str = "PATCH",
        query: str = "fieldManager=kubectl",
    ) -> Approval | None:
        """The gateway asking whether the request may go through now."""
        return self.service.find_usable(
            self.ask_for(rule, requester, path, body, method, query), self.clock()
        )


def make_harness(
    store: DynamoApprovalStore,
    fake: SlackFake,
    clock: FakeClock,
    endpoint: Endpoint,
    **service_options: Any,
) -> Harness:
    client = web_client(fake)
    service = ApprovalService(
        store,
        client,
        SlackDirectory(client),
        channel_default=CHANNEL,
        timing=Timing(clock=clock),
        **service_options,
    )
    endpoint.service = service
    return Harness(service, store, fake, clock, endpoint)


@pytest.fixture()
def harness(
    store: DynamoApprovalStore, slack: SlackFake, clock: FakeClock, endpoint: Endpoint
) -> Harness:
    return make_harness(store, slack, clock, endpoint)


def patch_rule(
    *,
    approvers: tuple[str, ...] = ("slack-group:platform-oncall",),
    mode: str = "once",
    min_approvers: int = 1,
    ttl: int = 900,
    window: int = 900,
    name: str = "change-workloads",
    channel: str | None = None,
) -> Rule:
    return Rule(
        index=3,
        effect="approve",
        name=name,
        reason="production workloads",
        verbs=("create", "update", "patch", "delete"),
        api_groups=("", "apps"),
        resources=("deployments",),
        namespaces=("shop",),
        approvers=approvers,
        approval=ApprovalSettings(
            mode=mode,
            ttl_seconds=ttl,
            window_seconds=window,
            min_approvers=min_approvers,
            channel=channel,
        ),
    )


T = TypeVar("T")


def must(value: T | None) -> T:
    """``value``, which the test expects to be there."""
    assert value is not None
    return value


def ts(approval: Approval) -> str:
    """The Slack message ts of a posted approval."""
    assert approval.slack_ts is not None, f"approval {approval.approval_id} was not posted"
    return approval.slack_ts


def sample_approval(**overrides: Any) -> Approval:
    """An approval as the service would create it, for the pure modules' tests."""
    values: dict[str, Any] = {
        "approval_id": "0123456789abcdef0123",
        "status": "pending",
        "requester": {
            "subject": "user-alice",
            "issuer": "https://oidc.eksgate.local",
            "email": "alice@example.com",
        },
        "cluster": "prod-eu",
        "policy": "engineers",
        "rule": "change-workloads",
        "mode": "once",
        "direct": False,
        "fingerprint": "f" * 64,
        "match_key": "once:" + "0" * 64,
        "request": {
            "method": "PATCH",
            "path": PATCH_PATH,
            "query": "fieldManager=kubectl",
            "verb": "patch",
            "resource": "deployments",
            "subresource": "",
            "namespace": "shop",
            "name": "web",
            "api_group": "apps",
        },
        "reason": "production workloads",
        "approvers": ("slack-group:platform-oncall",),
        "min_approvers": 1,
        "created_at": "2024-05-01T12:00:00.000000Z",
        "expires_at": 1714565700,
        "diff": "--- current\n+++ proposed\n-  replicas: 2\n+  replicas: 5",
    }
    values.update(overrides)
    return Approval(**values)
