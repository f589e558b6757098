"""Policy files: validation errors name file, line and field; decisions follow precedence."""

from __future__ import annotations

import textwrap

import pytest

from chalicelib.identity import Identity
from chalicelib.kube.request import KubeRequest
from chalicelib.policy import PolicyError, decide, load_policies, load_policy_text
from chalicelib.policy.durations import parse_duration
from eksgate.policy_cmd import lint_warnings, shadowed_rules

VALID = textwrap.dedent("""\
    name: team
    subjects:
      - issuer: https://issuer.test
        claims: {repository: acme/*, environment: [production, staging]}
    clusters: [prod-*]
    role: arn:aws:iam::123456789012:role/team
    rules:
      - name: read
        effect: allow
        verbs: [get, list, watch]
        resources: [pods, pods/log, deployments]
        namespaces: [shop]
      - name: change
        effect: approve
        verbs: [patch, update]
        apiGroups: [apps]
        resources: [deployments]
        namespaces: [shop]
        approvers: [U012AB3CD]
      - name: never-secrets-by-name
        effect: deny
        verbs: ["*"]
        resources: [secrets]
        resourceNames: [root-ca]
      - name: no-namespace-deletes
        effect: deny
        verbs: [delete]
        resources: [namespaces]
      - name: read-all-deployments
        effect: allow
        verbs: [get]
        resources: [deployments]
      - name: health
        effect: allow
        verbs: [get]
        nonResourceURLs: [/healthz, /metrics*]
    """)


def errors_for(text: str) -> list[str]:
    with pytest.raises(PolicyError) as err:
        load_policy_text(text, "policies/team.yaml")
    return [str(p) for p in err.value.problems]


def test_valid_policy_loads():
    [policy] = load_policy_text(VALID, "team.yaml")
    assert policy.name == "team" and policy.max_session_seconds == 900
    assert [r.label for r in policy.rules][:2] == ["read", "change"]
    assert policy.rules[1].approval.mode == "once"


@pytest.mark.parametrize("change, expected", [
    (("    verbs: [get, list, watch]", "    verbs: [get, lsit, watch]"),
     "policies/team.yaml:10: rules[0].verbs[1]: unknown verb 'lsit'"),
    (("    namespaces: [shop]\n  - name: change", "    namespaces: [shop]\n    colour: red\n  - name: change"),
     "policies/team.yaml:13: rules[0].colour: unknown field"),
    (("clusters: [prod-*]", "clusters: prod"),
     "policies/team.yaml:5: clusters: 'prod' is not of type 'array'"),
    (("role: arn:aws:iam::123456789012:role/team", "role: team"),
     "policies/team.yaml:6: role: 'team' is not an IAM role ARN"),
    (("name: team", "name: Team_1"), "policies/team.yaml:1: name: 'Team_1' must be lowercase"),
    (("    approvers: [U012AB3CD]", "    approvers: [U012AB3CD]\n    approval: {ttl: 15 minutes}"),
     "policies/team.yaml:20: rules[1].approval.ttl: '15 minutes' is not a duration"),
    (("    effect: approve", "    effect: maybe"), "policies/team.yaml:14: rules[1].effect: 'maybe' is not one of"),
    (("    approvers: [U012AB3CD]\n", ""), "policies/team.yaml:13: rules[1].approvers: an approve rule needs approvers"),
    (("rules:", "max_session: 2h\nrules:"), "policies/team.yaml:7: max_session: must be at most 15m"),
    (("subjects:", "subject:"), "policies/team.yaml:2: subject: unknown field"),
])
def test_errors_name_file_line_and_field(change, expected):
    old, new = change
    assert old in VALID
    found = errors_for(VALID.replace(old, new, 1))
    assert any(e.startswith(expected) for e in found), found


def test_missing_required_field_is_named():
    found = errors_for(VALID.replace("role: arn:aws:iam::123456789012:role/team\n", ""))
    assert any("'role' is required" in e for e in found), found


def test_invalid_yaml_names_the_line():
    found = errors_for("name: x\nrules: [\n")
    assert found[0].startswith("policies/team.yaml:") and "not valid YAML" in found[0]


def test_duplicate_keys_are_errors():
    found = errors_for(VALID.replace("name: team\n", "name: team\nname: team2\n", 1))
    assert any("policies/team.yaml:2: name: duplicate key" in e for e in found), found


def test_duplicate_policy_names_across_files(tmp_path):
    (tmp_path / "a.yaml").write_text(VALID)
    (tmp_path / "b.yaml").write_text(VALID)
    with pytest.raises(PolicyError, match="already defined"):
        load_policies(tmp_path)


def test_durations():
    assert parse_duration("1h30m") == 5400 and parse_duration("2d") == 172800
    for bad in ("", "15", "m", "1x", "-1m"):
        with pytest.raises(ValueError):
            parse_duration(bad)


# ---- decisions ------------------------------------------------------------------------------

AGENT = Identity("repo:acme/shop", "https://issuer.test",
                 claims={"repository": "acme/shop", "environment": "production"})


def req(verb, resource, namespace="", name="", group="", sub="", path=""):
    if path:
        return KubeRequest(verb=verb, path=path, is_resource_request=False)
    return KubeRequest(verb=verb, path="/x", api_group=group, resource=resource,
                       namespace=namespace, name=name, subresource=sub)


POLICIES = load_policy_text(VALID, "team.yaml")


@pytest.mark.parametrize("request_, effect, rule", [
    (req("list", "pods", "shop"), "allow", "read"),
    (req("get", "pods", "shop", "web-1", sub="log"), "allow", "read"),
    (req("get", "pods", "shop", "web-1", sub="exec"), "deny", "(no rule matched)"),
    (req("list", "pods", "payments"), "deny", "(no rule matched)"),
    (req("patch", "deployments", "shop", "web", group="apps"), "approve", "change"),
    (req("patch", "deployments", "shop", "web", group="extensions"), "deny", "(no rule matched)"),
    (req("get", "deployments", "payments", "api", group="apps"), "allow", "read-all-deployments"),
    (req("get", "secrets", "shop", "root-ca"), "deny", "never-secrets-by-name"),
    (req("list", "secrets", "shop"), "deny", "(no rule matched)"),
    (req("delete", "namespaces", "shop", "shop"), "deny", "no-namespace-deletes"),
    (req("get", "", path="/metrics/cadvisor"), "allow", "health"),
    (req("get", "", path="/logs"), "deny", "(no rule matched)"),
])
def test_decision_table(request_, effect, rule):
    decision = decide(AGENT, "prod-eu", request_, POLICIES)
    assert (decision.effect, decision.rule_label) == (effect, rule), decision.reason


def test_deny_beats_approve_beats_allow():
    text = VALID.replace("""  - name: read-all-deployments
    effect: allow""", """  - name: read-all-deployments
    effect: deny""")
    [policy] = load_policy_text(text)
    decision = decide(AGENT, "prod-eu", req("get", "deployments", "shop", "web", group="apps"),
                      [policy])
    assert decision.effect == "deny" and decision.rule_label == "read-all-deployments"
    text = VALID.replace("verbs: [patch, update]", "verbs: [patch, update, get]")
    [policy] = load_policy_text(text)
    decision = decide(AGENT, "prod-eu", req("get", "deployments", "shop", "web", group="apps"),
                      [policy])
    assert decision.effect == "approve"


@pytest.mark.parametrize("identity, cluster", [
    (Identity("x", "https://issuer.test", claims={"repository": "evil/shop",
                                                   "environment": "production"}), "prod-eu"),
    (Identity("x", "https://issuer.test", claims={"repository": "acme/shop",
                                                   "environment": "dev"}), "prod-eu"),
    (Identity("x", "https://other.test", claims=AGENT.claims), "prod-eu"),
    (AGENT, "staging"),
])
def test_no_matching_policy_is_deny(identity, cluster):
    decision = decide(identity, cluster, req("list", "pods", "shop"), POLICIES)
    assert decision.effect == "deny" and "no policy grants" in decision.reason


def test_list_valued_claims_match_any_element():
    text = VALID.replace("claims: {repository: acme/*, environment: [production, staging]}",
                         "claims: {groups: platform}")
    [policy] = load_policy_text(text)
    member = Identity("u", "https://issuer.test", claims={"groups": ["dev", "platform"]})
    assert decide(member, "prod-eu", req("list", "pods", "shop"), [policy]).effect == "allow"


def test_overlapping_policies_are_refused_not_guessed():
    [a] = load_policy_text(VALID)
    [b] = load_policy_text(VALID.replace("name: team", "name: team-two"))
    decision = decide(AGENT, "prod-eu", req("list", "pods", "shop"), [a, b])
    assert decision.effect == "deny" and "several policies" in decision.reason


# ---- lint -----------------------------------------------------------------------------------

def test_lint_finds_shadowed_rules():
    old = """  - name: read-all-deployments
    effect: allow
    verbs: [get]
    resources: [deployments]
"""
    assert old in VALID
    text = VALID.replace(old, old + """  - name: read-shop-deployment
    effect: allow
    verbs: [get]
    resources: [deployments]
    namespaces: [shop]
  - name: approve-namespace-delete
    effect: approve
    verbs: [delete]
    resources: [namespaces]
    approvers: [U1]
""")
    [policy] = load_policy_text(text)
    shadowed = {(r.label, by.label) for r, by in shadowed_rules(policy)}
    assert ("read-shop-deployment", "read") in shadowed  # the earlier twin decides first
    assert ("approve-namespace-delete", "no-namespace-deletes") in shadowed
    assert not any(r == "read" for r, _ in shadowed)


def test_lint_warns_about_subjects_no_one_can_match():
    warnings = [str(w) for w in lint_warnings(POLICIES, {"https://other.test"})]
    assert any("subjects[0].issuer" in w and "can match no one" in w for w in warnings)
    assert not lint_warnings(POLICIES, {"https://issuer.test"})


def test_shipped_policies_load_and_lint_clean():
    from chalicelib.config import DEFAULT_POLICY_DIR
    from eksgate.policy_cmd import _trusted_issuers
    policies = load_policies(DEFAULT_POLICY_DIR)
    assert [str(w) for w in lint_warnings(policies, _trusted_issuers(DEFAULT_POLICY_DIR))] == []


def test_masking_defaults_to_every_pattern_and_can_be_narrowed():
    from chalicelib.masking import PATTERN_NAMES
    [policy] = load_policy_text(VALID)
    assert set(policy.masking.patterns) == PATTERN_NAMES
    [narrow] = load_policy_text(VALID + "masking: {patterns: [jwt]}\n")
    assert narrow.masking.patterns == ("jwt",)
    assert any("masking.patterns[0]" in e for e in errors_for(VALID + "masking: {patterns: [x]}\n"))
