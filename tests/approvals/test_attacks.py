"""Approvals under attack: crowds, races, two accounts, a dead audit table, hostile text.

Clicks go through the Slack fake, signed, to an endpoint that hands them to the service with
the audit trail as its witness, as the app's route does; the trail is read back from moto.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from typing import Any

import pytest
from eksgate_local.slack_fake_workspace import FakeUser, default_workspace

from chalicelib.audit.recorder import GatewayAudit
from chalicelib.audit.store import DynamoAuditStore
from chalicelib.identity import Caller, Identity
from chalicelib.slack.messages import escape
from tests.approvals.conftest import (
    ALICE,
    PATCH_BODY,
    PATCH_PATH,
    TABLES,
    FakeClock,
    Harness,
    make_harness,
    must,
    patch_rule,
    start_fake,
    ts,
)
from tests.approvals.test_store import together

pytestmark = pytest.mark.adversarial

SESSION = "session-under-attack"


@pytest.fixture()
def audit_store(dynamodb: Any, clock: FakeClock) -> DynamoAuditStore:
    return DynamoAuditStore(dynamodb, TABLES["AuditTable"], clock=clock, sleep=lambda _: None)


def crowd(n: int, prefix: str = "CROWD") -> list[FakeUser]:
    return [
        FakeUser(
            f"U0{prefix}{i:02d}",
            f"{prefix.lower()}{i:02d}",
            f"{prefix} {i}",
            f"{prefix.lower()}{i:02d}@example.com",
        )
        for i in range(n)
    ]


def ask(
    harness: Harness,
    rule: Any,
    requester: Identity = ALICE,
    query: str = "fieldManager=kubectl",
    workload: bool = False,
) -> Any:
    request = Harness.ask_for(rule, requester, PATCH_PATH, PATCH_BODY, "PATCH", query)
    request = dataclasses.replace(request, session_id=SESSION, workload=workload)
    return harness.service.request(request, "--- current\n+++ proposed\n-  replicas: 2")


def decision_records(audit_store: DynamoAuditStore) -> list[Any]:
    return [r for r in audit_store.records(SESSION) if r.kind == "approval_decided"]


def setup(store: Any, clock: FakeClock, endpoint: Any, audit_store: Any, users: list[FakeUser]):
    fake = start_fake(endpoint, default_workspace().with_users(*users))
    harness = make_harness(store, fake, clock, endpoint)
    endpoint.witness = GatewayAudit(audit_store).decision_witness(Caller("10.0.0.9", "slack"))
    return fake, harness


def test_forty_clicks_at_once_leave_one_decision_record_naming_the_winner(
    store: Any, clock: FakeClock, endpoint: Any, audit_store: DynamoAuditStore
) -> None:
    people = crowd(40)
    fake, harness = setup(store, clock, endpoint, audit_store, people)
    try:
        approval = ask(harness, patch_rule(approvers=tuple(u.id for u in people)))
        together(40, lambda i: fake.click(ts(approval), "eksgate_approve", people[i].id).status)
        stored = must(store.get(approval.approval_id))
        assert stored.status == "approved" and len(stored.decisions) == 1
        records = decision_records(audit_store)
        assert len(records) == 1
        assert records[0].detail["slack_user"] == stored.decisions[0]["user_id"]
        refused = [r for r in audit_store.records(SESSION) if r.kind == "approval_click_refused"]
        assert len(refused) == 39
        assert all(r.detail["slack_user"] != records[0].detail["slack_user"] for r in refused)
    finally:
        fake.stop()


def test_a_deny_approve_race_records_only_who_decided(
    store: Any, clock: FakeClock, endpoint: Any, audit_store: DynamoAuditStore
) -> None:
    approvers, deniers = crowd(10, "YES"), crowd(10, "NO")
    people = approvers + deniers
    fake, harness = setup(store, clock, endpoint, audit_store, people)
    try:
        approval = ask(harness, patch_rule(approvers=tuple(u.id for u in people)))
        for denier in deniers:  # the deny form is opened first; its submission races
            fake.click(ts(approval), "eksgate_deny", denier.id)
        forms = {view.user: view.id for view in fake.views()}

        def act(i: int) -> Any:
            if i < 10:
                return fake.click(ts(approval), "eksgate_approve", approvers[i].id)
            denier = deniers[i - 10].id
            return fake.submit_view(forms[denier], denier, {"reason": "not now"})

        together(20, act)
        stored = must(store.get(approval.approval_id))
        records = decision_records(audit_store)
        assert len(records) == 1 and len(stored.decisions) == 1
        winner = stored.decisions[0]
        assert records[0].detail["slack_user"] == winner["user_id"]
        assert records[0].detail["action"] == winner["decision"]
        assert stored.status == ("approved" if winner["decision"] == "approve" else "denied")
    finally:
        fake.stop()


def test_two_slack_accounts_with_one_email_are_one_approver(
    store: Any, clock: FakeClock, endpoint: Any, audit_store: DynamoAuditStore
) -> None:
    bob = FakeUser("U0BOBA", "bob", "Bob", "bob@example.com")
    bob_again = FakeUser("U0BOBB", "bob-alt", "Bob (alt)", "BOB@example.com")
    fake, harness = setup(store, clock, endpoint, audit_store, [bob, bob_again])
    try:
        approval = ask(harness, patch_rule(approvers=("U0BOBA", "U0BOBB"), min_approvers=2))
        together(2, lambda i: fake.click(ts(approval), "eksgate_approve", [bob, bob_again][i].id))
        stored = must(store.get(approval.approval_id))
        assert stored.status == "pending" and len(stored.decisions) == 1
        assert len(decision_records(audit_store)) == 1
    finally:
        fake.stop()


def test_eight_identical_first_requests_make_one_approval_and_one_message(
    store: Any, clock: FakeClock, endpoint: Any, audit_store: DynamoAuditStore
) -> None:
    fake, harness = setup(store, clock, endpoint, audit_store, [])
    try:
        approvals = together(8, lambda i: ask(harness, patch_rule()))
        assert len({a.approval_id for a in approvals}) == 1
        posted = [c for c in fake.api_calls("chat.postMessage") if c.ok]
        assert len(posted) == 1
    finally:
        fake.stop()


def test_a_click_while_the_audit_table_is_down_decides_nothing(
    store: Any, clock: FakeClock, endpoint: Any, dynamodb: Any
) -> None:
    bob = FakeUser("U0BOB9", "bob", "Bob", "bob9@example.com")
    dead = DynamoAuditStore(dynamodb, "no-such-audit-table", clock=clock, sleep=lambda _: None)
    fake, harness = setup(store, clock, endpoint, dead, [bob])
    try:
        approval = ask(harness, patch_rule(approvers=("U0BOB9",)))
        fake.click(ts(approval), "eksgate_approve", bob.id)
        stored = must(store.get(approval.approval_id))
        assert stored.status == "pending" and stored.decisions == ()
        assert any("could not record your decision" in e.text for e in fake.ephemerals())
        assert harness.usable(patch_rule(approvers=("U0BOB9",))) is None
    finally:
        fake.stop()


@pytest.mark.parametrize("hostile", ["<!channel>", "<!here|here>", "<@U0BOB>", "<http://x|y>"])
def test_requester_controlled_text_never_reaches_slack_unescaped(
    store: Any, clock: FakeClock, endpoint: Any, audit_store: Any, hostile: str
) -> None:
    fake, harness = setup(store, clock, endpoint, audit_store, [])
    try:
        requester = Identity(
            f"user-{hostile}",
            "https://oidc.eksgate.local",
            email=None,
            claimed_email=f"{hostile}@example.com",
        )
        ask(harness, patch_rule(), requester=requester, query=f"fieldManager={hostile}")
        posted = [c for c in fake.api_calls("chat.postMessage") if c.ok]
        assert posted
        sent = json.dumps([c.args for c in posted])
        assert hostile not in sent
        assert escape(hostile) in sent  # shown, as text
        assert "UNVERIFIED" in sent  # the claimed email is shown, marked
    finally:
        fake.stop()


def test_the_message_names_the_requester_by_verified_facts(
    store: Any, clock: FakeClock, endpoint: Any, audit_store: Any
) -> None:
    fake, harness = setup(store, clock, endpoint, audit_store, [])
    try:
        liar = Identity(
            "user-mallory",
            "https://oidc.eksgate.local",
            email=None,
            claimed_email="cto@example.com",
        )
        ask(harness, patch_rule(), requester=liar)
        text = json.dumps([c.args for c in fake.api_calls("chat.postMessage") if c.ok])
        assert "user-mallory (issuer https://oidc.eksgate.local)" in text
        assert "claims cto@example.com (UNVERIFIED)" in text
        assert Counter(text.split("cto@example.com"))  # present only with its mark
        assert text.count("cto@example.com") == text.count("cto@example.com (UNVERIFIED)")
    finally:
        fake.stop()


def test_a_once_approval_given_back_is_usable_exactly_once_more(
    store: Any, clock: FakeClock, endpoint: Any, audit_store: DynamoAuditStore
) -> None:
    bob = FakeUser("U0BOB7", "bob", "Bob", "bob7@example.com")
    fake, harness = setup(store, clock, endpoint, audit_store, [bob])
    try:
        rule = patch_rule(approvers=("U0BOB7",))
        approval = ask(harness, rule)
        fake.click(ts(approval), "eksgate_approve", bob.id)
        used = must(harness.usable(rule))
        assert harness.usable(rule) is None  # used up
        assert harness.service.give_back(used)  # its request never reached the cluster
        assert not harness.service.give_back(used)  # only the use we made, only once
        again = must(harness.usable(rule))
        assert again.approval_id == approval.approval_id
        assert harness.usable(rule) is None
    finally:
        fake.stop()
