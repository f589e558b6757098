"""run_exec end to end against the emulator: policy with commands, masking, audit, errors."""

from __future__ import annotations

import base64
import json
import textwrap
from typing import Any

import pytest
from eksgate_local.kube_emulator.exec_commands import CONFIG_API_KEY, CONFIG_SECRET_KEY
from eksgate_local.kube_emulator.seed import DB_PASSWORD

from chalicelib.credentials.session_token import GatewaySession
from chalicelib.errors import BadRequest, Forbidden, PayloadTooLarge
from chalicelib.exec.approval import exec_approval_subject, exec_command_line
from chalicelib.exec.client import WebSocketExecClient
from chalicelib.exec.request import ExecInput, parse_exec_body
from chalicelib.exec.service import ExecPorts, mask_output, run_exec
from chalicelib.identity import Caller, Identity
from chalicelib.masking import MaskingSettings
from chalicelib.policy import load_policy_text

from .conftest import TOKEN, pod_named

POLICY = load_policy_text(
    textwrap.dedent("""\
    name: agents
    subjects: [{issuer: https://issuer.test}]
    clusters: [local]
    role: arn:aws:iam::123456789012:role/agents
    rules:
      - name: read-config
        effect: allow
        verbs: [create]
        resources: [pods/exec]
        namespaces: [shop]
        commands: [["cat", "/etc/app/*"], ["ls", "**"], ["env"], ["sh", "-c", "exit ?"],
                   ["head", "-c", "*", "/dev/urandom"], ["wc", "-c"], ["tail", "-f", "/etc/app/*"]]
      - name: migrations
        effect: approve
        verbs: [create]
        resources: [pods/exec]
        namespaces: [shop]
        commands: [["migrate", "**"]]
        approvers: [U012AB3CD]
    """),
    "agents.yaml",
)[0]
SESSION = GatewaySession(
    session_id="sess-1",
    cluster="local",
    policy="agents",
    identity=Identity(subject="agent-7", issuer="https://issuer.test"),
    issued_at=0,
    expires_at=2**31,
)


class RecordingAudit:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def session_event(self, kind, session, caller, **fields) -> None:
        json.dumps(fields)  # the audit store only takes plain values
        self.events.append({"kind": kind, **fields})


@pytest.fixture
def exec_with(cluster, emulator):
    def go(argv, *, stdin=None, timeout=20, pod="web-", await_approval=None, container=None):
        audit = RecordingAudit()

        def run(target, data, deadline):
            return WebSocketExecClient().run(cluster, TOKEN, target, data, deadline)

        request = ExecInput(
            "shop", pod_named(emulator, "shop", pod), container, tuple(argv), stdin, timeout
        )
        ports = ExecPorts(audit=audit, run=run, await_approval=await_approval)
        try:
            return run_exec(
                SESSION, POLICY, request, ports, Caller("10.0.0.1", "test")
            ), audit.events
        except Exception as error:
            error.events = audit.events  # type: ignore[attr-defined]
            raise

    return go


def test_cat_config_is_masked_and_recorded(exec_with) -> None:
    answer, events = exec_with(["cat", "/etc/app/config.yaml"])
    text = answer["stdout"]["text"]
    assert answer["exit_code"] == 0 and "listen: 0.0.0.0:80" in text
    for secret in (CONFIG_API_KEY, CONFIG_SECRET_KEY, DB_PASSWORD):
        assert secret not in text
        assert secret not in json.dumps(events)
    assert [e["kind"] for e in events] == ["request", "response"]
    recorded = events[1]["detail"]["exec"]
    assert recorded["argv"] == ["cat", "/etc/app/config.yaml"] and recorded["exit_code"] == 0
    assert recorded["stdout"]["text"] == text and recorded["stdout"]["cut_bytes"] == 0


def test_env_secret_from_secret_ref_is_masked(exec_with) -> None:
    answer, events = exec_with(["env"], pod="worker-")
    assert "DB_PASSWORD=" in answer["stdout"]["text"]
    assert DB_PASSWORD not in answer["stdout"]["text"] and DB_PASSWORD not in json.dumps(events)


def test_command_outside_the_patterns_is_refused_and_recorded(exec_with) -> None:
    with pytest.raises(Forbidden, match="no rule of policy 'agents' allows") as caught:
        exec_with(["cat", "/etc/app/../../etc/shadow"])
    events = caught.value.events
    assert [e["kind"] for e in events] == ["refusal"]
    assert events[0]["detail"]["exec"]["argv"] == ["cat", "/etc/app/../../etc/shadow"]


def test_approve_rule_without_approvals_wired_fails_closed(exec_with) -> None:
    with pytest.raises(Forbidden, match="requires approval"):
        exec_with(["migrate", "--to", "latest"])


def test_approve_rule_binds_the_exact_exec(exec_with, emulator) -> None:
    seen = []

    def approve(decision, subject):
        seen.append(subject)
        return "appr-1"

    answer, events = exec_with(["migrate", "--to", "latest"], await_approval=approve)
    assert answer["approval_id"] == "appr-1" and answer["exit_code"] == 127  # no migrate binary
    assert seen[0]["argv"] == ["migrate", "--to", "latest"] and seen[0]["pod"].startswith("web-")
    assert events[0]["approval_id"] == "appr-1"


def test_exit_code_stdin_binary_and_cut(exec_with) -> None:
    assert exec_with(["sh", "-c", "exit 4"])[0]["exit_code"] == 4
    answer, _ = exec_with(["wc", "-c"], stdin=b"abc")
    assert answer["stdout"]["text"] == "3\n"
    binary, events = exec_with(["head", "-c", "5000", "/dev/urandom"])
    assert len(base64.b64decode(binary["stdout"]["base64"])) == 5000
    assert events[1]["detail"]["exec"]["stdout"]["binary"] is True
    cut, events = exec_with(["tail", "-f", "/etc/app/config.yaml"], timeout=3)
    assert cut["outcome"] == "cut" and cut["exit_code"] is None
    assert "still running" in cut["remote_process"] and CONFIG_API_KEY not in cut["stdout"]["text"]
    assert events[1]["detail"]["exec"]["outcome"] == "cut"


def test_cluster_refusal_is_recorded(exec_with, emulator) -> None:
    with pytest.raises(BadRequest, match="container zz is not valid") as caught:
        exec_with(["ls"], container="zz")
    assert [e["kind"] for e in caught.value.events] == ["request", "response"]
    assert caught.value.events[1]["detail"]["error"]["status"] == 400


def test_masking_binary_keeps_other_bytes() -> None:
    data = b"\xff\x00key=AKIAIOSFODNN7EXAMPLE\xfe"
    masked = mask_output(data, MaskingSettings())
    assert (
        b"AKIAIOSFODNN7EXAMPLE" not in masked
        and masked.startswith(b"\xff\x00")
        and masked.endswith(b"\xfe")
    )


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        (b"not json", BadRequest, "JSON object"),
        (b"[]", BadRequest, "JSON object"),
        (b'{"namespace":"shop","pod":"web"}', BadRequest, "argv"),
        (b'{"namespace":"Shop!","pod":"web","argv":["ls"]}', BadRequest, "namespace"),
        (b'{"namespace":"shop","pod":"web","argv":["ls"],"stdin":"***"}', BadRequest, "base64"),
        (b'{"namespace":"shop","pod":"web","argv":["ls"],"timeout":60}', BadRequest, "at most 25s"),
        (
            b'{"namespace":"shop","pod":"web","argv":["ls"],"tty":true}',
            BadRequest,
            "unknown fields",
        ),
        (b'{"namespace":"shop","pod":"web","argv":["a\\u0000b"]}', BadRequest, "NUL"),
        (b'{"namespace":"shop","pod":"web","argv":[""]}', BadRequest, "argv[0]"),
    ],
)
def test_bad_bodies(body: bytes, error, message: str) -> None:
    with pytest.raises(error, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_exec_body(body)


def test_stdin_over_the_limit() -> None:
    big = base64.b64encode(b"x" * (1024 * 1024 + 1)).decode()
    with pytest.raises(PayloadTooLarge):
        parse_exec_body(
            json.dumps({"namespace": "shop", "pod": "web", "argv": ["cat"], "stdin": big}).encode()
        )


def test_approval_subject_binds_everything() -> None:
    base = ExecInput("shop", "web-1", "web", ("cat", "/etc/app/a"), b"in", 20)
    fingerprint = exec_approval_subject("prod", base)["fingerprint"]
    variants = [
        ExecInput("shop", "web-2", "web", ("cat", "/etc/app/a"), b"in", 20),
        ExecInput("shop", "web-1", "sidecar", ("cat", "/etc/app/a"), b"in", 20),
        ExecInput("shop", "web-1", "web", ("cat", "/etc/app/b"), b"in", 20),
        ExecInput("shop", "web-1", "web", ("cat /etc/app/a",), b"in", 20),
        ExecInput("shop", "web-1", "web", ("cat", "/etc/app/a"), b"other", 20),
        ExecInput("shop", "web-1", "web", ("cat", "/etc/app/a"), None, 20),
        ExecInput("payments", "web-1", "web", ("cat", "/etc/app/a"), b"in", 20),
    ]
    assert all(exec_approval_subject("prod", v)["fingerprint"] != fingerprint for v in variants)
    assert exec_approval_subject("other", base)["fingerprint"] != fingerprint
    same_but_timeout = ExecInput("shop", "web-1", "web", ("cat", "/etc/app/a"), b"in", 5)
    assert exec_approval_subject("prod", same_but_timeout)["fingerprint"] == fingerprint


def test_command_line_is_escaped() -> None:
    request = ExecInput("shop", "web-1", None, ("sh", "-c", "echo $(id); rm -rf /"), b"", 20)
    assert (
        exec_command_line(request)
        == "kubectl exec -n shop web-1 -i -- sh -c 'echo $(id); rm -rf /'"
    )
