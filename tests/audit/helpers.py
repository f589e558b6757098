"""Building sealed audit records for tests, without a store."""

from __future__ import annotations

from typing import Any

from chalicelib.audit.chain import genesis_hash, seal
from chalicelib.audit.records import SessionRecord, new_event

IDENTITY = {
    "subject": "repo:shop/app:ref:refs/heads/main",
    "issuer": "https://token.actions.githubusercontent.com",
    "email": None,
    "groups": ["ci"],
    "matched_claims": {"repository": "shop/app"},
}


def request_event(
    session_id: str,
    verb: str = "list",
    resource: str = "pods",
    namespace: str = "shop",
    name: str = "",
    effect: str = "allow",
    **extra: Any,
) -> dict[str, Any]:
    """The fields of a proxied request, as the gateway would record them."""
    fields: dict[str, Any] = dict(
        session_id=session_id,
        subject=IDENTITY["subject"],
        cluster="prod",
        identity=IDENTITY,
        source_ip="203.0.113.7",
        user_agent="kubectl/v1.31.0",
        request={
            "method": "GET",
            "path": f"/api/v1/namespaces/{namespace}/{resource}",
            "query": "",
            "verb": verb,
            "api_group": "",
            "api_version": "v1",
            "resource": resource,
            "subresource": "",
            "namespace": namespace,
            "name": name,
        },
        decision={
            "effect": effect,
            "policy": "ci-agent",
            "rule": "read-shop",
            "reason": "rule read-shop of policy 'ci-agent' allows list pods",
        },
        upstream_status=200,
        latency_ms=12.5,
        response_body={"inline": '{"kind":"PodList","items":[]}', "size": 30},
    )
    fields.update(extra)
    return new_event("request", **fields)


def sealed_chain(session_id: str, count: int, *, start_time: int = 0) -> list[SessionRecord]:
    """``count`` sealed request records of one session, seq 0..count-1."""
    records: list[SessionRecord] = []
    prev = genesis_hash(session_id)
    for seq in range(count):
        fields = {
            **request_event(session_id, name=f"web-{seq}", verb="get"),
            "seq": seq,
            "time": f"2026-11-22T13:40:{start_time + seq:02d}.123Z",
            "expires_at": 1_900_000_000,
        }
        record = seal(fields, prev)
        records.append(record)
        prev = record.hash
    return records
