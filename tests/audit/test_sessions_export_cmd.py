"""``eksgate sessions export``: records or Kubernetes audit events, as JSON lines."""

from __future__ import annotations

import json

from eksgate.sessions_cmd import cmd_sessions_export
from tests.audit.test_k8s_events import VALIDATOR
from tests.audit.test_sessions_cmd import SID, TAMPERED, _args, gateway  # noqa: F401


def _export(server, **given):
    values = {"session_ids": [], "format": "records", "policy": None}
    values.update(given)
    return cmd_sessions_export(_args(server, **values))


def test_k8s_audit_export_of_listed_sessions_is_valid_events(gateway, capsys):  # noqa: F811
    assert _export(gateway, cluster="prod", format="k8s-audit") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [seen["path"] for seen in gateway.seen] == ["/v1/sessions", f"/v1/sessions/{SID}"]
    assert gateway.seen[0]["query"] == {"cluster": "prod"}
    events = [json.loads(line) for line in lines]
    assert len(events) == 3
    for event in events:
        VALIDATOR.validate(event)
        assert event["annotations"]["eksgate.io/session-id"] == SID


def test_records_export_is_the_records_themselves(gateway, capsys):  # noqa: F811
    assert _export(gateway, session_ids=[SID]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["seq"] for r in lines] == [0, 1, 2] and lines[0]["session_id"] == SID


def test_a_policy_file_sets_the_levels(gateway, capsys, tmp_path):  # noqa: F811
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n  - level: None\n    userGroups: [ci]\n"
    )
    assert _export(gateway, session_ids=[SID], format="k8s-audit", policy=str(policy)) == 0
    assert capsys.readouterr().out == ""  # every request of the ci group is at level None


def test_a_broken_chain_is_not_exported(gateway, capsys):  # noqa: F811
    assert _export(gateway, session_ids=[TAMPERED], format="k8s-audit") == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "chain BROKEN at record 1" in captured.err


def test_usage_errors_name_what_is_wrong(gateway, capsys, tmp_path):  # noqa: F811
    assert _export(gateway) == 2
    assert "give session ids" in capsys.readouterr().err
    assert (
        _export(
            gateway, session_ids=[SID], policy=str(tmp_path / "missing.yaml"), format="k8s-audit"
        )
        == 2
    )
    assert "cannot read the policy file" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: Loud}]\n")
    assert _export(gateway, session_ids=[SID], policy=str(bad), format="k8s-audit") == 2
    assert "rules[0].level" in capsys.readouterr().err
    assert _export(gateway, session_ids=[SID], policy=str(bad)) == 2
    assert "--format k8s-audit only" in capsys.readouterr().err
    assert gateway.seen == []
