"""The schedule's expiry: overdue approvals become expired and their session records it."""

from __future__ import annotations

import time

from chalicelib.approvals.model import Approval
from chalicelib.routes.slack import expire_approvals
from chalicelib.services import build_services


def test_overdue_approvals_expire_and_the_session_records_it(settings, aws):
    services = build_services(settings, aws)
    now = int(time.time())
    services.audit_store.append(
        {
            "kind": "token_issued",
            "session_id": "s1",
            "subject": "u",
            "cluster": "demo",
            "identity": {},
            "source_ip": "",
            "user_agent": "",
            "request": None,
            "decision": None,
            "approval_id": None,
            "upstream_status": None,
            "latency_ms": None,
            "request_body": None,
            "response_body": None,
            "detail": {},
        }
    )
    store = services.approvals._store
    store.create(
        Approval(
            approval_id="a" * 20,
            status="pending",
            requester={"subject": "u", "issuer": "https://oidc.eksgate.local", "email": None},
            cluster="demo",
            policy="ci-agent",
            rule="change-deployments",
            mode="once",
            direct=False,
            fingerprint="f",
            match_key="m",
            request={"method": "PATCH", "path": "/x"},
            reason="",
            approvers=("U0BOB",),
            min_approvers=1,
            created_at="2026-01-01T00:00:00Z",
            expires_at=now - 5,
            session_id="s1",
        )
    )
    assert expire_approvals(services) == 1  # Slack is not configured here: best effort only
    assert store.get("a" * 20).status == "expired"
    kinds = [r.kind for r in services.audit_store.records("s1")]
    assert kinds == ["token_issued", "approval_expired"]
    assert expire_approvals(services) == 0
