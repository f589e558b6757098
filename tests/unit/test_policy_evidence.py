"""The pure parts of `policy suggest` and `policy simulate`: grouping, replay, diffing."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.audit.chain import genesis_hash, seal
from chalicelib.audit.records import new_event
from chalicelib.kube.request import resolve
from chalicelib.policy import load_policy_text
from eksgate.audit_window import read_window, since_time
from eksgate.policy_evidence import evidence, recorded_identity, replay_decision
from eksgate.policy_simulate import render, simulate
from eksgate.policy_suggest import refused_repeatedly
from eksgate.rule_grouping import Observed, covers, smallest_rules, stable_names

IDENTITY = {
    "subject": "repo:acme/shop:environment:production",
    "issuer": "https://oidc.eksgate.local",
    "email": None,
    "groups": [],
    "matched_claims": {"repository": "acme/shop", "environment": "production"},
}

POLICY = """
name: ci-agent
subjects:
  - issuer: https://oidc.eksgate.local
    claims: {repository: acme/shop, environment: production}
clusters: [demo]
role: arn:aws:iam::123456789012:role/eksgate-ci-agent
rules:
  - name: read-shop
    effect: allow
    verbs: [get, list, watch]
    resources: [pods, secrets]
    namespaces: [shop]
  - name: change-deployments
    effect: approve
    verbs: [patch]
    apiGroups: [apps]
    resources: [deployments]
    namespaces: [shop]
    approvers: [U0BOB]
  - name: no-namespace-deletes
    effect: deny
    verbs: [delete]
    resources: [namespaces]
"""


def allow(method: str, path: str, query: str = "") -> Observed:
    return Observed(resolve(method, path, query), "allow")


def test_requests_on_one_object_group_by_verb_and_keep_stable_names():
    rules = smallest_rules(
        [
            allow("GET", "/api/v1/namespaces/shop/secrets/db"),
            allow("PUT", "/api/v1/namespaces/shop/secrets/db"),
            allow("GET", "/api/v1/namespaces/shop/secrets/db"),
        ]
    )
    assert len(rules) == 1
    rule = rules[0]
    assert rule.verbs == {"get", "update"} and rule.names == {"db"}
    assert rule.namespaces == {"shop"} and rule.resources == {"secrets"}
    assert rule.count == 3


def test_generated_names_are_not_pinned():
    assert not stable_names(["web-7d4b9c6f5-x2k9q"])
    assert not stable_names(["job-28475932-bq7zw"])
    assert stable_names(["web", "db-credentials"])
    assert not stable_names([f"cm-{i}" for i in range(10)])  # too many to be a stable set
    rules = smallest_rules([allow("GET", "/api/v1/namespaces/shop/pods/web-7d4b9c6f5-x2k9q")])
    assert rules[0].names is None


def test_merges_never_allow_a_combination_that_was_not_seen():
    # pods read in shop, secrets read in payments: one rule [pods, secrets] x [shop, payments]
    # would also allow secrets in shop, so they must stay two rules.
    rules = smallest_rules(
        [
            allow("GET", "/api/v1/namespaces/shop/pods"),
            allow("GET", "/api/v1/namespaces/payments/secrets"),
        ]
    )
    assert len(rules) == 2
    # The same verb and resource in two namespaces is exactly one rule.
    rules = smallest_rules(
        [allow("GET", "/api/v1/namespaces/shop/pods"), allow("GET", "/api/v1/namespaces/web/pods")]
    )
    assert len(rules) == 1 and rules[0].namespaces == {"shop", "web"}


def test_a_list_across_namespaces_covers_the_namespaced_lists():
    rules = smallest_rules(
        [allow("GET", "/api/v1/pods"), allow("GET", "/api/v1/namespaces/shop/pods")]
    )
    assert len(rules) == 1 and rules[0].namespaces is None and rules[0].count == 2


def test_approvals_stay_approvals_and_keep_their_origin():
    patch = resolve("PATCH", "/apis/apps/v1/namespaces/shop/deployments/web")
    rules = smallest_rules(
        [
            Observed(patch, "approve", "change-deployments"),
            allow("GET", "/apis/apps/v1/namespaces/shop/deployments/web"),
        ]
    )
    effects = {(r.effect, r.origin) for r in rules}
    assert effects == {("approve", "change-deployments"), ("allow", "")}
    assert not any(covers(a, b) for a in rules for b in rules if a is not b)


def test_every_observed_request_is_matched_by_some_rule():
    observed = [
        allow("GET", p)
        for p in (
            "/api/v1/namespaces/shop/pods",
            "/api/v1/namespaces/shop/pods/web/log",
            "/apis/apps/v1/namespaces/shop/deployments",
            "/api/v1/nodes",
            "/healthz/etcd",
        )
    ]
    observed.append(allow("GET", "/api/v1/namespaces/shop/pods", "watch=true"))
    rules = smallest_rules(observed)
    for item in observed:
        r = item.request
        assert any(
            r.verb in rule.verbs
            and (
                r.path in rule.urls
                if not r.is_resource_request
                else r.resource_with_subresource in rule.resources
                and r.api_group in rule.api_groups
                and (rule.namespaces is None or r.namespace in rule.namespaces)
            )
            for rule in rules
        ), r


def record(seq: int, kind: str, method: str, path: str, effect: str, rule: str, query: str = ""):
    request = resolve(method, path, query)
    fields = new_event(
        kind,
        session_id="s1",
        subject=IDENTITY["subject"],
        cluster="demo",
        identity=IDENTITY,
        request={
            "method": method,
            "path": path,
            "query": query,
            "verb": request.verb,
            "api_group": request.api_group,
            "api_version": request.api_version,
            "resource": request.resource,
            "subresource": request.subresource,
            "namespace": request.namespace,
            "name": request.name,
        },
        decision={"effect": effect, "policy": "ci-agent", "rule": rule, "reason": ""},
    )
    return {
        **fields,
        "seq": seq,
        "time": f"2026-11-22T13:40:{seq:02d}.000Z",
        "expires_at": 1_900_000_000,
    }


def chain(*fields):
    records, prev = [], genesis_hash("s1")
    for item in fields:
        sealed = seal(item, prev)
        records.append(sealed)
        prev = sealed.hash
    return records


def trail():
    return chain(
        record(0, "request", "GET", "/api/v1/namespaces/shop/pods", "allow", "read-shop"),
        record(
            1, "request", "GET", "/api/v1/namespaces/shop/pods", "allow", "read-shop", "watch=true"
        ),
        record(2, "refusal", "DELETE", "/api/v1/namespaces/shop", "deny", "no-namespace-deletes"),
        record(3, "refusal", "DELETE", "/api/v1/namespaces/shop", "deny", "no-namespace-deletes"),
        record(
            4,
            "request",
            "PATCH",
            "/apis/apps/v1/namespaces/shop/deployments/web",
            "approve",
            "change-deployments",
        ),
    )


def test_the_recorded_identity_still_matches_its_policy():
    policies = tuple(load_policy_text(POLICY))
    item = evidence(trail())[0]
    decision = replay_decision(recorded_identity(item.record), "demo", item.request, policies)
    assert decision.effect == "allow" and decision.rule_label == "read-shop"


def test_an_unchanged_policy_changes_no_decision():
    policies = tuple(load_policy_text(POLICY))
    result = simulate(evidence(trail()), policies)
    assert result.replayed == 5 and result.changes == []
    assert render(result, "2026-11-22T00:00:00.000Z", 1)[-1] == "no decision would change"


def test_dropping_a_used_rule_is_a_breaking_change_with_examples():
    narrower = POLICY.replace("verbs: [get, list, watch]", "verbs: [get]")
    result = simulate(evidence(trail()), tuple(load_policy_text(narrower)))
    assert [(c.old, c.new) for c in result.changes] == [("allow", "deny"), ("allow", "deny")]
    assert {c.command for c in result.changes} == {
        "kubectl get pods -n shop",
        "kubectl get pods -n shop --watch",
    }
    text = "\n".join(render(result, "since", 1))
    assert "BREAKS: allow -> deny" in text and "session s1" in text


def test_widening_is_reported_but_does_not_break():
    wider = POLICY.replace(
        "effect: deny\n    verbs: [delete]", "effect: allow\n    verbs: [delete]"
    )
    result = simulate(evidence(trail()), tuple(load_policy_text(wider)))
    assert [(c.old, c.new) for c in result.changes] == [("deny", "allow"), ("deny", "allow")]
    assert result.breaking == []
    assert "changes: deny -> allow  x2  kubectl delete namespace shop" in "\n".join(
        render(result, "since", 1)
    )


def test_a_policy_no_longer_matching_the_caller_denies_everything():
    other = POLICY.replace("environment: production", "environment: staging")
    result = simulate(evidence(trail()), tuple(load_policy_text(other)))
    assert len(result.breaking) == 3
    assert "no policy grants" in result.breaking[0].reason


def test_repeated_refusals_are_counted():
    assert refused_repeatedly(evidence(trail())) == [
        (2, "delete namespaces/shop", "no-namespace-deletes")
    ]


def test_a_session_whose_chain_is_broken_is_not_used():
    records = trail()
    tampered = [r.to_json_dict() for r in records]
    tampered[2]["decision"]["effect"] = "allow"  # someone rewrote a refusal as allowed

    def get(path, params):
        if path == "/v1/sessions":
            return {"sessions": [{"session_id": "s1", "last_time": records[-1].time}]}
        return {"records": tampered}

    window = read_window(get, [{"identity": IDENTITY["subject"]}], "2026-11-22T00:00:00.000Z")
    assert window.broken_sessions == ["s1"] and window.records == []


def test_the_window_reads_every_page_of_sessions():
    pages = {
        None: [{"session_id": f"a{i}", "last_time": f"t{500 - i:04d}"} for i in range(500)],
        "t0001": [
            {"session_id": "a499", "last_time": "t0001"},
            {"session_id": "b", "last_time": "t0000"},
        ],
    }
    asked = []

    def get(path, params):
        if path == "/v1/sessions":
            asked.append(params.get("until"))
            return {"sessions": pages[params.get("until")]}
        return {"records": []}

    from eksgate.audit_window import session_ids

    ids = session_ids(get, {"cluster": "demo"}, "2026-01-01T00:00:00.000Z")
    assert len(ids) == 501 and asked == [None, "t0001"]


def test_since_takes_policy_durations_only():
    assert since_time("30d").endswith("Z")
    with pytest.raises(ValueError):
        since_time("yesterday")


def test_suggestion_file_is_not_read_outside_the_policy(tmp_path: Path):
    # The suggestion copies the current policy's document from its own file, by name.
    from eksgate.policy_suggest import raw_policy

    path = tmp_path / "p.yaml"
    path.write_text(POLICY)
    policy = load_policy_text(POLICY, str(path))[0]
    assert raw_policy(policy)["role"].endswith("eksgate-ci-agent")


def suggestion_text(tmp_path: Path, records, policy_text: str = POLICY) -> str:
    from eksgate.policy_suggest import suggest

    path = tmp_path / "ci-agent.yaml"
    path.write_text(policy_text)
    policies = tuple(load_policy_text(policy_text, str(path)))
    return suggest(records, policies, None, "2026-11-22T00:00:00.000Z", "test")


def test_the_suggestion_loads_and_decides_as_the_trail_did(tmp_path: Path):
    text = suggestion_text(tmp_path, trail())
    new = tuple(load_policy_text(text))
    for item in evidence(trail()):
        decision = replay_decision(recorded_identity(item.record), "demo", item.request, new)
        assert decision.effect == item.effect
    # Narrower: reading secrets was allowed by the current policy, nobody did it.
    secrets = resolve("GET", "/api/v1/namespaces/shop/secrets")
    identity = recorded_identity(trail()[0])
    assert replay_decision(identity, "demo", secrets, new).effect == "deny"
    assert "# Refused repeatedly" in text and "2 x delete namespaces/shop" in text


def test_a_literal_wildcard_in_a_request_never_becomes_a_wildcard_rule(tmp_path: Path):
    wide = POLICY.replace("    namespaces: [shop]\n  - name: change", "  - name: change")
    records = chain(
        record(0, "request", "GET", "/api/v1/namespaces/*/pods", "allow", "read-shop"),
        record(1, "request", "GET", "/api/v1/namespaces/shop/pods", "allow", "read-shop"),
    )
    text = suggestion_text(tmp_path, records, wide)
    new = tuple(load_policy_text(text))
    other = resolve("GET", "/api/v1/namespaces/payments/pods")
    assert replay_decision(recorded_identity(records[0]), "demo", other, new).effect == "deny"
    assert "not suggested: 1 requests naming a wildcard" in text


def test_names_in_comments_cannot_inject_policy_text(tmp_path: Path):
    evil = POLICY.replace(
        "name: no-namespace-deletes",
        "name: \"x\\nrules: [{effect: allow, verbs: ['*'], resources: ['*']}]\"",
    )
    rule = "x\nrules: [{effect: allow, verbs: ['*'], resources: ['*']}]"
    records = chain(
        record(0, "refusal", "DELETE", "/api/v1/namespaces/shop", "deny", rule),
        record(1, "refusal", "DELETE", "/api/v1/namespaces/shop", "deny", rule),
        record(2, "request", "GET", "/api/v1/namespaces/shop/pods", "allow", "read-shop"),
    )
    text = suggestion_text(tmp_path, records, evil)
    assert not any(line.startswith("rules: [") for line in text.splitlines())
    new = tuple(load_policy_text(text))
    assert [r.effect for r in new[0].rules] == ["allow", "deny"]


def test_terminal_escapes_in_a_subject_are_shown_not_sent():
    from eksgate.policy_simulate import Change, Simulation

    change = Change("evil\x1b[2J", "allow", "deny", "a", "b", "kubectl get pods", "s1", "t", "r")
    text = "\n".join(render(Simulation(1, [change]), "since", 1))
    assert "\x1b" not in text and "evil\\x1b[2J" in text


def test_bad_input_is_a_clear_error_not_a_trace(capsys):
    from eksgate.cli import main

    assert (
        main(
            [
                "policy",
                "simulate",
                "policies",
                "--since",
                "yesterday",
                "--gateway",
                "https://127.0.0.1:9",
            ]
        )
        == 2
    )
    assert "--since: 'yesterday' is not a duration" in capsys.readouterr().err
    assert main(["policy", "simulate", "/nonexistent", "--gateway", "https://127.0.0.1:9"]) == 2
    assert "do not load" in capsys.readouterr().err
    assert (
        main(["policy", "suggest", "--policy", "nobody", "--gateway", "https://127.0.0.1:9"]) == 2
    )
    assert "policy 'nobody' is not in" in capsys.readouterr().err


# The same caller and cluster as POLICY, with pods/exec rules that name commands.
EXEC_POLICY = (
    POLICY[: POLICY.index("rules:")]
    + """rules:
  - name: read-app-config
    effect: allow
    verbs: [create]
    resources: [pods/exec]
    namespaces: [shop]
    commands: [["cat", "/etc/app/*"]]
  - name: run-scripts
    effect: approve
    verbs: [create]
    resources: [pods/exec]
    namespaces: [shop]
    commands: [["sh", "-c", "**"]]
    approvers: [slack-group:platform-oncall]
    approval: {mode: once, ttl: 15m, min_approvers: 1}
"""
)


def test_an_exec_replays_with_the_argv_it_ran():
    """A pods/exec rule decides by the command: the replay must see the recorded argv, or an
    allowed ``cat`` would replay as whatever the rules say of an exec with no command."""
    exec_record = record(
        0, "request", "POST", "/api/v1/namespaces/shop/pods/web-1/exec", "allow", "read-app-config"
    )
    exec_record["detail"] = {"exec": {"argv": ["cat", "/etc/app/config.yaml"], "container": ""}}
    (item,) = evidence(chain(exec_record))
    assert item.request.command == ("cat", "/etc/app/config.yaml")
    policies = tuple(load_policy_text(EXEC_POLICY))
    decision = replay_decision(recorded_identity(item.record), "demo", item.request, policies)
    assert (decision.effect, decision.rule_label) == ("allow", "read-app-config")


def test_exec_rules_name_the_commands_that_ran_and_no_other():
    """An allowed ``ls`` beside an approved ``sh -c`` in the same namespace: the allow rule
    names ``ls`` only, so a suggestion never turns the shell into an allow (nor ``ls`` into an
    approval)."""
    from dataclasses import replace

    exec_path = "/api/v1/namespaces/shop/pods/web-1/exec"
    ls = replace(resolve("POST", exec_path), command=("ls", "/etc/app"))
    cat = replace(resolve("POST", exec_path), command=("cat", "/etc/app/a"))
    shell = replace(resolve("POST", exec_path), command=("sh", "-c", "date"))
    rules = smallest_rules(
        [
            Observed(ls, "allow", "read-app-config"),
            Observed(cat, "allow", "read-app-config"),
            Observed(shell, "approve", "run-scripts"),
        ]
    )
    by_effect = {rule.effect: rule for rule in rules}
    assert len(rules) == 2
    assert by_effect["allow"].commands == {("ls", "/etc/app"), ("cat", "/etc/app/a")}
    assert by_effect["approve"].commands == {("sh", "-c", "date")}
    assert not covers(by_effect["allow"], next(iter(_cells_of(shell))))


def _cells_of(request):
    return smallest_rules([Observed(request, "allow", "read-app-config")])
