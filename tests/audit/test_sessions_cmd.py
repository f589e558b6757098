"""``eksgate sessions``: against a tiny local HTTP server serving canned API answers."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace
from typing import Any

import pytest

from chalicelib.audit.chain import report_json, verify_chain
from chalicelib.audit.replay import render_timeline
from eksgate.sessions_cmd import (
    cmd_sessions_list,
    cmd_sessions_replay,
    cmd_sessions_show,
    cmd_sessions_verify,
)
from tests.audit.helpers import sealed_chain
from tests.loopback import Answer, LoopbackServer, Request, json_answer

SID = "5f0c1d2e3a4b5c6d7e8f90a1b2c3d4e5"
TAMPERED = "tampered0000000000000000000000000"
TOKEN = "header.payload.signature"


def _session_answer(records, session_id=SID, chain=None):
    return {
        "session_id": session_id,
        "records": [r.to_json_dict() for r in records],
        "chain": chain or report_json(verify_chain(session_id, records)),
    }


def _answers():
    intact = sealed_chain(SID, 3)
    tampered = sealed_chain(TAMPERED, 3)
    tampered[1] = dataclasses.replace(tampered[1], upstream_status=201)
    summary = {
        "session_id": SID,
        "subject": "alice",
        "cluster": "prod",
        "first_time": "2026-11-22T13:40:29.123Z",
        "last_time": "2026-11-22T13:40:31.123Z",
        "records": 3,
        "decisions": {"allow": 3},
        "approvals": 0,
    }
    return {
        "/v1/sessions": (200, {"sessions": [summary]}),
        f"/v1/sessions/{SID}": (200, _session_answer(intact)),
        # The server claims the chain is fine; the client must not believe it.
        f"/v1/sessions/{TAMPERED}": (
            200,
            _session_answer(tampered, TAMPERED, chain={"ok": True, "checked": 3, "problem": None}),
        ),
        "/v1/sessions/gone": (
            404,
            {"code": "NotFound", "message": "no audit records for session 'gone'"},
        ),
    }


class Gateway:
    """The audit API, canned: records each request's path, query and Authorization."""

    def __init__(self) -> None:
        self.answers = _answers()
        self.seen: list[dict[str, Any]] = []
        self.server = LoopbackServer(self._answer).start()
        self.url = self.server.url

    def _answer(self, request: Request) -> Answer:
        self.seen.append(
            {
                "path": request.path,
                "query": request.query,
                "authorization": request.header("Authorization"),
            }
        )
        return json_answer(*self.answers.get(request.path, (404, {"message": "no route"})))

    def close(self) -> None:
        self.server.close()


@pytest.fixture()
def gateway(monkeypatch):
    monkeypatch.setenv("EKSGATE_OIDC_TOKEN", TOKEN)
    server = Gateway()
    yield server
    server.close()


def _args(server, **given):
    values = dict(
        gateway=server.url,
        oidc_token_file=None,
        oidc_token_env=None,
        ca_file=None,
        identity=None,
        cluster=None,
        since=None,
        until=None,
        decision=None,
        session_id=None,
        bodies=False,
        json=False,
    )
    values.update(given)
    return SimpleNamespace(**values)


def test_list_sends_the_filters_with_the_oidc_token_and_prints_a_table(gateway, capsys):
    code = cmd_sessions_list(
        _args(gateway, identity="alice", since="2026-11-22T00:00:00Z", decision="allow")
    )
    assert code == 0
    assert gateway.seen == [
        {
            "path": "/v1/sessions",
            "authorization": f"Bearer {TOKEN}",
            "query": {"identity": "alice", "since": "2026-11-22T00:00:00Z", "decision": "allow"},
        }
    ]
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["SESSION", "SUBJECT", "CLUSTER"]
    assert out[1].split()[:3] == [SID, "alice", "prod"]


def test_list_as_json_prints_the_api_answer(gateway, capsys):
    assert cmd_sessions_list(_args(gateway, cluster="prod", json=True)) == 0
    assert json.loads(capsys.readouterr().out) == gateway.answers["/v1/sessions"][1]


def test_list_without_identity_or_cluster_is_a_usage_error(gateway, capsys):
    assert cmd_sessions_list(_args(gateway)) == 2
    assert "give --identity or --cluster" in capsys.readouterr().err
    assert gateway.seen == []


def test_verify_recomputes_the_chain_and_finds_it_intact(gateway, capsys):
    assert cmd_sessions_verify(_args(gateway, session_id=SID)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"session {SID}: 3 records, chain intact"
    assert out[1].startswith("anchors: this gateway keeps none")
    assert out[2] == "checked: the hash chain of 3 records (recomputed here)"
    assert out[3].startswith("last hash ")


def _anchored(gateway, records, anchored_seqs, served=None):
    anchors = [
        {"seq": s, "hash": records[s].hash, "anchored_at": "2026-11-22T13:41:00+00:00"}
        for s in anchored_seqs
    ]
    gateway.answers[f"/v1/sessions/{SID}"] = (
        200,
        {**_session_answer(served if served is not None else records), "anchors": anchors},
    )


def test_verify_checks_the_anchors_by_default_and_says_what_it_checked(gateway, capsys):
    records = sealed_chain(SID, 3)
    _anchored(gateway, records, [0, 2])
    assert cmd_sessions_verify(_args(gateway, session_id=SID)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == (
        "anchors: records 0 to 2 match the anchor of record 2 (anchored "
        "2026-11-22T13:41:00+00:00); 2 anchors, none disagrees"
    )
    assert out[2] == "every record is anchored"
    assert out[3] == (
        "checked: the hash chain of 3 records (recomputed here), 2 anchors from "
        "the gateway's Object Lock bucket"
    )


def test_verify_reports_records_newer_than_the_newest_anchor_as_not_yet_anchored(gateway, capsys):
    records = sealed_chain(SID, 5)
    _anchored(gateway, records, [1])
    assert cmd_sessions_verify(_args(gateway, session_id=SID, json=True)) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["anchors"]["anchored_through"] == 1
    assert report["anchors"]["unanchored"] == [2, 3, 4]
    assert cmd_sessions_verify(_args(gateway, session_id=SID)) == 0
    assert (
        "not yet anchored: records 2 to 4 are newer than the newest anchor"
        in capsys.readouterr().out
    )


def test_verify_finds_a_deleted_tail_without_flags(gateway, capsys):
    records = sealed_chain(SID, 5)
    _anchored(gateway, records, [2, 4], served=records[:3])
    assert cmd_sessions_verify(_args(gateway, session_id=SID)) == 1
    out = capsys.readouterr().out
    assert f"session {SID}: 3 records, chain intact" in out  # the chain alone is fooled
    assert (
        f"session {SID}: TAMPERED: record 4 was anchored but the table has records up to "
        "2: records 3 to 4 were deleted"
    ) in out
    assert "last hash" not in out


def test_verify_finds_a_rewritten_suffix_without_flags(gateway, capsys):
    records = sealed_chain(SID, 4)
    forged = sealed_chain(SID, 4, start_time=30)  # a whole new chain: it verifies on its own
    _anchored(gateway, records, [3], served=records[:2] + forged[2:])
    assert cmd_sessions_verify(_args(gateway, session_id=SID, json=True)) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["anchors"]["problem"]["code"] in ("anchor_mismatch",)
    assert report["problem"]["code"] == "prev_hash"  # spliced: the chain sees it here too
    _anchored(gateway, records, [3], served=forged)
    assert cmd_sessions_verify(_args(gateway, session_id=SID, json=True)) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["problem"] is None and report["anchors"]["problem"]["code"] == "anchor_mismatch"


def test_verify_refuses_malformed_anchors(gateway, capsys):
    records = sealed_chain(SID, 2)
    gateway.answers[f"/v1/sessions/{SID}"] = (
        200,
        {**_session_answer(records), "anchors": [{"seq": "1", "hash": records[1].hash}]},
    )
    assert cmd_sessions_verify(_args(gateway, session_id=SID)) == 1
    assert "an anchor of session" in capsys.readouterr().err


def test_verify_does_not_trust_the_servers_chain_field(gateway, capsys):
    assert cmd_sessions_verify(_args(gateway, session_id=TAMPERED)) == 1
    out = capsys.readouterr().out
    assert "chain BROKEN at record 1: record 1 was altered (hash mismatch)" in out


def test_verify_with_an_anchor_detects_a_removed_last_record(gateway, capsys):
    args = _args(gateway, session_id=SID, expect_count=4, json=True)
    assert cmd_sessions_verify(args) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["problem"]["code"] == "count"
    assert report["verified_by"] == "client"


def test_show_prints_the_session_with_details_and_the_client_side_chain(gateway, capsys):
    assert cmd_sessions_show(_args(gateway, session_id=SID, bodies=True)) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        f"session {SID}: repo:shop/app:ref:refs/heads/main (issuer "
        "https://token.actions.githubusercontent.com) on cluster prod\n"
    )
    assert "#1  kubectl get pods web-1 -n shop  allow (ci-agent/read-shop)  200  12ms" in out
    assert "response body (30 bytes):" in out
    assert out.rstrip().endswith(f"session {SID}: 3 records, chain intact")


def test_replay_prints_the_timeline_and_warns_about_a_broken_chain(gateway, capsys):
    assert cmd_sessions_replay(_args(gateway, session_id=SID)) == 0
    expected = render_timeline(sealed_chain(SID, 3))
    assert capsys.readouterr().out.splitlines() == expected
    assert cmd_sessions_replay(_args(gateway, session_id=TAMPERED)) == 0
    assert "warning: the chain is broken: record 1 was altered" in capsys.readouterr().err


def test_replay_as_json_gives_one_command_per_line(gateway, capsys):
    assert cmd_sessions_replay(_args(gateway, session_id=SID, json=True)) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0] == {
        "seq": 0,
        "time": "2026-11-22T13:40:00.123Z",
        "kind": "request",
        "kubectl": "kubectl get pods web-0 -n shop",
    }


def test_errors_are_one_line_on_stderr_never_a_traceback(gateway, capsys, monkeypatch, tmp_path):
    assert cmd_sessions_show(_args(gateway, session_id="gone")) == 1
    assert capsys.readouterr().err == (
        "eksgate: the gateway refused (HTTP 404): no audit records for session 'gone'\n"
    )
    gateway.answers[f"/v1/sessions/{SID}"] = (200, {"session_id": SID, "records": [{"seq": 0}]})
    assert cmd_sessions_verify(_args(gateway, session_id=SID)) == 1
    assert "record at position 0 of session" in capsys.readouterr().err
    monkeypatch.delenv("EKSGATE_OIDC_TOKEN")
    assert cmd_sessions_verify(_args(gateway, session_id=SID)) == 1
    assert "no OIDC token" in capsys.readouterr().err
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    closed = _args(
        gateway, session_id=SID, oidc_token_file=str(token_file), gateway="http://127.0.0.1:9"
    )
    assert cmd_sessions_verify(closed) == 1
    assert "cannot reach the eksgate gateway at http://127.0.0.1:9" in capsys.readouterr().err
