"""pods/exec rules with commands: loading, validation and decisions."""

from __future__ import annotations

import textwrap

import pytest

from chalicelib.kube.request import KubeRequest
from chalicelib.policy import PolicyError, load_policy_text
from chalicelib.policy.engine import evaluate

POLICY = textwrap.dedent("""\
    name: exec-team
    subjects:
      - issuer: https://issuer.test
    clusters: [prod]
    role: arn:aws:iam::123456789012:role/team
    rules:
      - name: read-config
        effect: allow
        verbs: [create]
        resources: [pods/exec]
        namespaces: [shop]
        commands: [["cat", "/etc/app/*"], ["ls", "**"]]
      - name: migrations
        effect: approve
        verbs: [create]
        resources: [pods/exec]
        namespaces: [shop]
        commands: [["migrate", "--dry-run", "**"], ["migrate", "**"]]
        approvers: [U012AB3CD]
      - name: never-rm
        effect: deny
        verbs: [create]
        resources: [pods/exec]
        commands: [["rm", "**"]]
    """)


def exec_request(*argv: str, namespace: str = "shop") -> KubeRequest:
    return KubeRequest(
        verb="create",
        path=f"/api/v1/namespaces/{namespace}/pods/web-1/exec",
        api_prefix="api",
        api_version="v1",
        namespace=namespace,
        resource="pods",
        subresource="exec",
        name="web-1",
        command=tuple(argv),
    )


@pytest.fixture(scope="module")
def policy():
    return load_policy_text(POLICY, "exec.yaml")[0]


@pytest.mark.parametrize(
    ("argv", "effect", "rule"),
    [
        (["cat", "/etc/app/config.yaml"], "allow", "read-config"),
        (["ls"], "allow", "read-config"),
        (["ls", "-la", "/"], "allow", "read-config"),
        (["cat", "/etc/app/../../etc/shadow"], "deny", None),
        (["cat", "/etc/passwd"], "deny", None),
        (["migrate", "--to", "latest"], "approve", "migrations"),
        (["rm", "-rf", "/"], "deny", "never-rm"),
        (["sh", "-c", "cat /etc/app/config.yaml"], "deny", None),
    ],
)
def test_decisions(policy, argv, effect, rule) -> None:
    decision = evaluate(policy, exec_request(*argv))
    assert decision.effect == effect
    assert (decision.rule.name if decision.rule else None) == rule


def test_rule_with_commands_never_matches_without_an_argv(policy) -> None:
    request = exec_request("ls")
    bare = KubeRequest(**{**request.__dict__, "command": None})
    assert evaluate(policy, bare).effect == "deny"


def test_other_namespace_is_denied(policy) -> None:
    assert evaluate(policy, exec_request("ls", namespace="payments")).effect == "deny"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("resources: [pods]\n    commands: [[ls]]", "commands need resources: [pods/exec] alone"),
        ("resources: [pods/exec]\n    commands: [['**']]", "must be spelled out"),
        ("resources: [pods/exec]\n    commands: [[]]", "commands[0]"),
        ("resources: [pods/exec]\n    commands: ls", "commands"),
    ],
)
def test_bad_commands_are_refused(rule: str, message: str) -> None:
    text = textwrap.dedent("""\
        name: bad
        subjects: [{issuer: https://issuer.test}]
        clusters: [prod]
        role: arn:aws:iam::123456789012:role/team
        rules:
          - effect: allow
            RULE
        """).replace("RULE", rule)
    with pytest.raises(PolicyError) as err:
        load_policy_text(text, "bad.yaml")
    assert any(message in str(p) for p in err.value.problems), err.value.problems
