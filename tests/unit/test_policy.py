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


@pytest.mark.parametrize(
    "change, expected",
    [
        (
            ("    verbs: [get, list, watch]", "    verbs: [get, lsit, watch]"),
            "policies/team.yaml:10: rules[0].verbs[1]: unknown verb 'lsit'",
        ),
        (
            (
                "    namespaces: [shop]\n  - name: change",
                "    namespaces: [shop]\n    colour: red\n  - name: change",
            ),
            "policies/team.yaml:13: rules[0].colour: unknown field",
        ),
        (
            ("clusters: [prod-*]", "clusters: prod"),
            "policies/team.yaml:5: clusters: 'prod' is not of type 'array'",
        ),
        (
            ("role: arn:aws:iam::123456789012:role/team", "role: team"),
            "policies/team.yaml:6: role: 'team' is not an IAM role ARN",
        ),
        (("name: team", "name: Team_1"), "policies/team.yaml:1: name: 'Team_1' must be lowercase"),
        (
            (
                "    approvers: [U012AB3CD]",
                "    approvers: [U012AB3CD]\n    approval: {ttl: 15 minutes}",
            ),
            "policies/team.yaml:20: rules[1].approval.ttl: '15 minutes' is not a duration",
        ),
        (
            ("    effect: approve", "    effect: maybe"),
            "policies/team.yaml:14: rules[1].effect: 'maybe' is not one of",
        ),
        (
            ("    approvers: [U012AB3CD]\n", ""),
            "policies/team.yaml:13: rules[1].approvers: an approve rule needs approvers",
        ),
        (
            ("rules:", "max_session: 2h\nrules:"),
            "policies/team.yaml:7: max_session: must be at most 15m",
        ),
        (("subjects:", "subject:"), "policies/team.yaml:2: subject: unknown field"),
    ],
)
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

AGENT = Identity(
    "repo:acme/shop",
    "https://issuer.test",
    claims={"repository": "acme/shop", "environment": "production"},
)


def req(verb, resource, namespace="", name="", group="", sub="", path=""):
    if path:
        return KubeRequest(verb=verb, path=path, is_resource_request=False)
    return KubeRequest(
        verb=verb,
        path="/x",
        api_group=group,
        resource=resource,
        namespace=namespace,
        name=name,
        subresource=sub,
    )


POLICIES = load_policy_text(VALID, "team.yaml")


@pytest.mark.parametrize(
    "request_, effect, rule",
    [
        (req("list", "pods", "shop"), "allow", "read"),
        (req("get", "pods", "shop", "web-1", sub="log"), "allow", "read"),
        (req("get", "pods", "shop", "web-1", sub="exec"), "deny", "(no rule matched)"),
        (req("list", "pods", "payments"), "deny", "(no rule matched)"),
        (req("patch", "deployments", "shop", "web", group="apps"), "approve", "change"),
        (
            req("patch", "deployments", "shop", "web", group="extensions"),
            "deny",
            "(no rule matched)",
        ),
        (
            req("get", "deployments", "payments", "api", group="apps"),
            "allow",
            "read-all-deployments",
        ),
        (req("get", "secrets", "shop", "root-ca"), "deny", "never-secrets-by-name"),
        (req("list", "secrets", "shop"), "deny", "(no rule matched)"),
        (req("delete", "namespaces", "shop", "shop"), "deny", "no-namespace-deletes"),
        (req("get", "", path="/metrics/cadvisor"), "allow", "health"),
        (req("get", "", path="/logs"), "deny", "(no rule matched)"),
    ],
)
def test_decision_table(request_, effect, rule):
    decision = decide(AGENT, "prod-eu", request_, POLICIES)
    assert (decision.effect, decision.rule_label) == (effect, rule), decision.reason


def test_deny_beats_approve_beats_allow():
    text = VALID.replace(
        """  - name: read-all-deployments
    effect: allow""",
        """  - name: read-all-deployments
    effect: deny""",
    )
    [policy] = load_policy_text(text)
    decision = decide(
        AGENT, "prod-eu", req("get", "deployments", "shop", "web", group="apps"), [policy]
    )
    assert decision.effect == "deny" and decision.rule_label == "read-all-deployments"
    text = VALID.replace("verbs: [patch, update]", "verbs: [patch, update, get]")
    [policy] = load_policy_text(text)
    decision = decide(
        AGENT, "prod-eu", req("get", "deployments", "shop", "web", group="apps"), [policy]
    )
    assert decision.effect == "approve"


@pytest.mark.parametrize(
    "identity, cluster",
    [
        (
            Identity(
                "x",
                "https://issuer.test",
                claims={"repository": "evil/shop", "environment": "production"},
            ),
            "prod-eu",
        ),
        (
            Identity(
                "x", "https://issuer.test", claims={"repository": "acme/shop", "environment": "dev"}
            ),
            "prod-eu",
        ),
        (Identity("x", "https://other.test", claims=AGENT.claims), "prod-eu"),
        (AGENT, "staging"),
    ],
)
def test_no_matching_policy_is_deny(identity, cluster):
    decision = decide(identity, cluster, req("list", "pods", "shop"), POLICIES)
    assert decision.effect == "deny" and "no policy grants" in decision.reason


def test_list_valued_claims_match_any_element():
    text = VALID.replace(
        "claims: {repository: acme/*, environment: [production, staging]}",
        "claims: {groups: platform}",
    )
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
    text = VALID.replace(
        old,
        old
        + """  - name: read-shop-deployment
    effect: allow
    verbs: [get]
    resources: [deployments]
    namespaces: [shop]
  - name: approve-namespace-delete
    effect: approve
    verbs: [delete]
    resources: [namespaces]
    approvers: [U1]
""",
    )
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


# ---- compiled policies: the index and rule tables answer as the plain definitions do --------


def _random_policies(rng, count):
    from chalicelib.policy.model import Policy, Rule, Subject

    issuers = ["https://a.test", "https://b.test", "https://*.test"]
    values = ["acme/shop", "acme/*", "acme/sh?p", "evil/shop", "true", "7", "[ae]cme/x", "*"]
    policies = []
    for i in range(count):
        subjects = []
        for _ in range(rng.randint(1, 2)):
            names = rng.sample(
                ["repository", "environment", "groups", "admin", "level"], rng.randint(0, 2)
            )
            claims = {n: tuple(rng.sample(values, rng.randint(1, 2))) for n in names}
            subjects.append(Subject(rng.choice(issuers), claims))
        clusters = tuple(rng.sample(["prod-*", "staging", "dev", "p?od-eu"], rng.randint(1, 2)))
        policies.append(Policy(f"p{i}", tuple(subjects), clusters, "arn", (Rule(0, "allow"),)))
    return policies


def _random_identity(rng):
    texts = ["acme/shop", "acme/ship", "evil/shop", "ecme/x", "", "acme/"]
    claim_values = texts + [True, False, 7, None, ["dev", "acme/shop"], ["x"], {"a": 1}]
    claims = {
        n: rng.choice(claim_values)
        for n in rng.sample(["repository", "environment", "groups", "admin", "level"], 3)
    }
    issuer = rng.choice(["https://a.test", "https://b.test", "https://c.test", "https://a.tes"])
    return Identity("s", issuer, claims=claims)


def test_index_finds_exactly_the_policies_that_apply():
    import random

    from chalicelib.policy import PolicyIndex

    rng = random.Random(12)
    for _ in range(30):
        policies = _random_policies(rng, rng.randint(1, 25))
        index = PolicyIndex(policies)
        for _ in range(60):
            identity = _random_identity(rng)
            cluster = rng.choice(["prod-eu", "staging", "dev", "qa", "prod-"])
            expected = tuple(p for p in policies if p.applies_to(identity, cluster))
            assert index.matching(identity, cluster) == expected
            assert index.matching(identity, cluster) == expected  # again, from the memo


def test_rule_tables_pick_the_rule_precedence_picks():
    import random

    from chalicelib.policy.engine import evaluate
    from chalicelib.policy.model import Policy, Rule

    rng = random.Random(7)
    verbs = ["get", "list", "delete", "patch", "*"]
    resources = ["pods", "pods/log", "pods/*", "*/status", "deployments", "*", "secrets"]
    for _ in range(40):
        rules = []
        for i in range(rng.randint(1, 12)):
            non_resource = rng.random() < 0.15
            rules.append(
                Rule(
                    index=i,
                    effect=rng.choice(["allow", "approve", "deny"]),
                    verbs=tuple(rng.sample(verbs, rng.randint(1, 2))),
                    api_groups=tuple(rng.sample(["*", "", "apps"], rng.randint(1, 2))),
                    resources=()
                    if non_resource
                    else tuple(rng.sample(resources, rng.randint(1, 2))),
                    namespaces=tuple(rng.sample(["shop", "s*", "kube-?ystem"], rng.randint(0, 2))),
                    resource_names=tuple(rng.sample(["web", "db"], rng.randint(0, 1))),
                    non_resource_urls=("/healthz", "/metrics*") if non_resource else (),
                )
            )
        policy = Policy("p", (), ("*",), "arn", tuple(rules))
        for _ in range(80):
            if rng.random() < 0.1:
                request = KubeRequest(
                    rng.choice(["get", "post"]),
                    rng.choice(["/healthz", "/metrics/x", "/version"]),
                    is_resource_request=False,
                )
            else:
                request = req(
                    rng.choice(verbs[:4]),
                    rng.choice(["pods", "deployments", "secrets"]),
                    rng.choice(["shop", "stage", "kube-system", ""]),
                    rng.choice(["web", "db", ""]),
                    sub=rng.choice(["", "log", "status"]),
                    group=rng.choice(["", "apps"]),
                )
            matched = [r for r in rules if r.matches(request)]
            expected = (
                min(
                    matched,
                    key=lambda r: ({"deny": 0, "approve": 1, "allow": 2}[r.effect], r.index),
                )
                if matched
                else None
            )
            for _ in range(2):  # computed, then remembered
                decision = evaluate(policy, request)
                assert decision.rule is expected
                assert decision.effect == (expected.effect if expected else "deny")


def test_loaded_policies_refuse_overlap_through_their_index(tmp_path):
    from chalicelib.errors import Forbidden
    from chalicelib.policy import select_policy

    (tmp_path / "a.yaml").write_text(VALID)
    (tmp_path / "b.yaml").write_text(VALID.replace("name: team", "name: team-two"))
    policies = load_policies(tmp_path)
    with pytest.raises(Forbidden) as err:
        select_policy(AGENT, "prod-eu", policies)
    assert "several policies" in err.value.message and "team, team-two" in err.value.message
    with pytest.raises(Forbidden) as err:
        select_policy(AGENT, "staging", policies)
    assert "no policy grants" in err.value.message


def test_memo_tables_stay_bounded():
    from chalicelib.policy import PolicyIndex
    from chalicelib.policy.compiled import MEMO_LIMIT

    [policy] = load_policy_text(VALID)
    index = PolicyIndex([policy])
    for i in range(MEMO_LIMIT + 10):
        stranger = Identity(
            "x",
            "https://issuer.test",
            claims={"repository": f"acme/{i}", "environment": "production"},
        )
        assert index.matching(stranger, "prod-eu") == (policy,)
        decide(AGENT, "prod-eu", req("get", "pods", "shop", f"pod-{i}"), [policy])
    assert len(index._memo) <= MEMO_LIMIT
    assert len(policy.rule_table.decisions) <= MEMO_LIMIT


@pytest.mark.parametrize(
    "change",
    [
        ("clusters: [prod-*]", "clusters: []"),
        ("clusters: [prod-*]", "clusters: [1]"),
        ("clusters: [prod-*]", "clusters: ['']"),
        ("name: team", "name: 'team_'"),
        ("name: team", "name: true"),
        ("    effect: allow", "    effect: 1"),
        ("    verbs: [get, list, watch]", "    verbs: [get, true]"),
        ("    verbs: [get, list, watch]", "    verbs: []"),
        (
            "claims: {repository: acme/*, environment: [production, staging]}",
            "claims: {repository: {a: b}}",
        ),
        (
            "claims: {repository: acme/*, environment: [production, staging]}",
            "claims: {repository: 1.5}",
        ),
        ("claims: {repository: acme/*, environment: [production, staging]}", "claims: {r: []}"),
        ("claims: {repository: acme/*, environment: [production, staging]}", "claims: {r: 7}"),
        (
            "    approvers: [U012AB3CD]",
            "    approvers: [U012AB3CD]\n    approval: {min_approvers: 9}",
        ),
        (
            "    approvers: [U012AB3CD]",
            "    approvers: [U012AB3CD]\n    approval: {min_approvers: 2.0}",
        ),
        ("    approvers: [U012AB3CD]", "    approvers: [U012AB3CD]\n    approval: {direct: 1}"),
        ("role: arn:aws:iam::123456789012:role/team", "role: arn:aws:iam::1234:role/team"),
        ("name: team", "name: team\nextra: 1"),
        ("name: team", "name: team\ndirect: 'yes'"),
        ("name: team", "name: team\nmax_session: 2020-01-01"),
        ("name: team", "name: team\nmasking: {secret_data: never}"),
        ("", ""),
    ],
)
def test_fast_schema_check_agrees_with_jsonschema(change):
    import jsonschema
    import yaml

    from chalicelib.policy.conformance import compile_schema
    from chalicelib.policy.schema import POLICY_SCHEMA

    document = yaml.safe_load(VALID.replace(*change) if change[0] else VALID)
    fast = compile_schema(POLICY_SCHEMA)(document)
    assert fast == jsonschema.Draft202012Validator(POLICY_SCHEMA).is_valid(document)


@pytest.mark.parametrize(
    "line, expected",
    [
        ("description: 2020-13-45", "2: description: not a value policies can hold: month"),
        ("description: !!binary xx", "2: description: not a value policies can hold: failed"),
        ("description: !!python/object:os.system x", "could not determine a constructor"),
        ("? !!binary xx\n: b", "2: not a value policies can hold: failed to decode base64"),
    ],
)
def test_values_yaml_cannot_construct_are_errors_at_their_line(line, expected):
    text = VALID.replace("name: team\n", f"name: team\n{line}\n", 1)
    (error,) = errors_for(text)
    assert error.startswith("policies/team.yaml:") and expected in error


def test_the_remembered_yaml_tags_change_no_value():
    """The loader remembers each scalar's resolved tag; the values are PyYAML's own."""
    import yaml

    text = "a: [1, '1', true, 'true', null, ~, 1.5, 0x1f, 2020-01-02, yes, on, '', x]\n"
    for _ in range(2):
        assert load_policy_text_values(text) == yaml.safe_load(text)


def load_policy_text_values(text):
    import yaml

    from chalicelib.policy.loader import _LineTracker, _YamlLoader

    (node,) = yaml.compose_all(text, Loader=_YamlLoader)
    return _LineTracker("t.yaml").build(node, (0,))
