"""Replay of exec steps: the kubectl exec line, the outcome and the recorded masked output."""

from __future__ import annotations

from chalicelib.audit.records import SessionRecord
from chalicelib.audit.replay import render_timeline

REQUEST = {
    "method": "POST",
    "path": "/api/v1/namespaces/shop/pods/web-1/exec",
    "query": "",
    "verb": "create",
    "api_group": "",
    "api_version": "v1",
    "resource": "pods",
    "subresource": "exec",
    "namespace": "shop",
    "name": "web-1",
}
DECISION = {"effect": "allow", "policy": "ci-agent", "rule": "read-app-config", "reason": ""}
STEP = {
    "argv": ["sh", "-c", "cat /etc/app/x; echo $HOME"],
    "container": "web",
    "stdin_bytes": None,
    "stdin_sha256": "",
    "timeout_seconds": 20,
}


def record(seq: int, kind: str, **fields) -> SessionRecord:
    base = {
        "session_id": "s",
        "seq": seq,
        "time": "2026-11-29T01:00:00.000Z",
        "kind": kind,
        "subject": "agent",
        "cluster": "demo",
        "identity": {},
        "source_ip": "",
        "user_agent": "",
        "request": REQUEST,
        "decision": None,
        "approval_id": None,
        "upstream_status": None,
        "latency_ms": None,
        "request_body": None,
        "response_body": None,
        "detail": {},
        "prev_hash": "",
        "hash": "",
        "expires_at": 0,
    }
    return SessionRecord(**{**base, **fields})


def test_exec_steps_replay_as_kubectl_exec_with_output() -> None:
    lines = render_timeline(
        [
            record(0, "request", decision=DECISION, detail={"exec": STEP}),
            record(
                1,
                "response",
                upstream_status=0,
                latency_ms=41.0,
                detail={
                    "exec": {
                        **STEP,
                        "exit_code": 0,
                        "outcome": "exited",
                        "stdout": {
                            "size": 30,
                            "cut_bytes": 2,
                            "text": "key: ***MASKED***\n/root\n",
                        },
                        "stderr": {"size": 0, "cut_bytes": 0, "text": ""},
                    }
                },
            ),
        ]
    )
    assert lines[0].endswith(
        "kubectl exec -n shop web-1 -c web -- sh -c 'cat /etc/app/x; echo $HOME'  allow "
        "(ci-agent/read-app-config)"
    )
    assert lines[1].endswith("-> exit 0  41ms")
    assert "stdout (30 bytes, 2 bytes cut):" in lines[2] and lines[3].strip() == "key: ***MASKED***"


def test_refused_and_cut_exec_steps() -> None:
    refused = render_timeline(
        [
            record(
                0,
                "refusal",
                decision={**DECISION, "effect": "deny", "rule": ""},
                detail={"exec": STEP},
            )
        ]
    )
    assert "kubectl exec -n shop web-1" in refused[0] and refused[0].endswith("not run")
    cut = render_timeline(
        [
            record(
                0,
                "response",
                detail={
                    "exec": {
                        **STEP,
                        "exit_code": None,
                        "outcome": "cut",
                        "remote_process": "still running",
                        "stdout": {"size": 5, "cut_bytes": 0, "binary": True},
                    }
                },
            )
        ]
    )
    assert "cut at the deadline (process still running)" in cut[0]
    assert "5 bytes of binary output" in cut[1]
