"""Policies -> the access entries a cluster should have."""

from __future__ import annotations

import json

import pytest

from chalicelib.config import DEFAULT_POLICY_DIR
from chalicelib.policy import load_policies
from eksgate.access_entries import AccessScope, ClusterAdminRequired, desired_entries
from eksgate.access_entries.access_policies import CLUSTER_SCOPED
from eksgate.kube_names import DISCOVERY_DIR
from tests.access_entries.policies import ADMIN, EDIT, VIEW, policy, read, role_arn, write


def scopes(entry) -> dict[str, str]:
    return {a.policy_name: a.scope.describe() for a in entry.associations}


def test_read_only_rules_get_the_view_policy_in_their_namespaces():
    [entry] = desired_entries(
        [policy("reader", "r", [read(["pods", "services"], ["shop"])])], "prod-eu"
    )
    assert entry.principal_arn == role_arn("r")
    assert entry.type == "STANDARD"
    assert scopes(entry) == {"AmazonEKSViewPolicy": "namespaces [shop]"}
    assert entry.tags == {"managed-by": "eksgate", "eksgate-policies": "reader"}
    assert entry.warnings == ()


def test_writes_on_workloads_get_the_edit_policy_and_reads_stay_view():
    [entry] = desired_entries(
        [
            policy(
                "ci",
                "ci",
                [
                    read(["deployments"], ["shop"]),
                    write(["deployments", "deployments/scale"], ["shop"], apiGroups=["apps"]),
                ],
            )
        ],
        "prod-eu",
    )
    assert scopes(entry) == {
        "AmazonEKSEditPolicy": "namespaces [shop]",
        "AmazonEKSViewPolicy": "namespaces [shop]",
    }


def test_exec_attach_and_port_forward_for_direct_grants_get_the_edit_policy():
    rule = write(
        ["pods/exec", "pods/attach", "pods/portforward"],
        ["shop"],
        verbs=["create", "get"],
        approval={"mode": "grant", "direct": True, "role": role_arn("debug-grant")},
    )
    entries = {
        e.principal_arn: e for e in desired_entries([policy("debug", "d", [rule])], "prod-eu")
    }
    # The grant's own role carries this rule alone; the policy's role gets nothing of it.
    assert entries[role_arn("d")].associations == ()
    entry = entries[role_arn("debug-grant")]
    assert scopes(entry) == {"AmazonEKSEditPolicy": "namespaces [shop]"}
    # Edit is the narrowest policy with exec, and it reads Secrets: the plan says so.
    [warning] = entry.warnings
    assert "reading and writing Secrets comes with AmazonEKSEditPolicy" in warning
    assert "direct EKS tokens for this role (policy debug) carry all of it" in warning


def test_view_only_roles_carry_no_secret_warning():
    [entry] = desired_entries([policy("dash", "d", [read(["pods"], ["shop"])])], "prod-eu")
    assert entry.warnings == ()


def test_namespaced_rbac_writes_get_the_admin_policy():
    rule = write(
        ["roles", "rolebindings"], ["shop", "payments"], apiGroups=["rbac.authorization.k8s.io"]
    )
    [entry] = desired_entries([policy("rbac", "r", [rule])], "prod-eu")
    assert scopes(entry) == {"AmazonEKSAdminPolicy": "namespaces [payments, shop]"}


def test_scope_is_the_union_of_namespaces_or_the_cluster_when_a_rule_names_none():
    [entry] = desired_entries(
        [
            policy(
                "p",
                "r",
                [
                    read(["pods"], ["shop"]),
                    read(["services"], ["payments", "shop"]),
                    write(["configmaps"], ["default"], effect="allow"),
                ],
            )
        ],
        "prod-eu",
    )
    assert scopes(entry) == {
        "AmazonEKSViewPolicy": "namespaces [payments, shop]",
        "AmazonEKSEditPolicy": "namespaces [default]",
    }
    [wide] = desired_entries(
        [policy("p", "r", [read(["pods"], ["shop"]), read(["pods"])])], "prod-eu"
    )
    assert wide.associations[0].scope == AccessScope.cluster()


def test_deny_rules_are_left_to_the_gateway():
    [entry] = desired_entries(
        [
            policy(
                "p",
                "r",
                [
                    read(["pods"], ["shop"]),
                    {"effect": "deny", "verbs": ["*"], "resources": ["*"]},
                    {"effect": "deny", "verbs": ["delete"], "resources": ["namespaces"]},
                ],
            )
        ],
        "prod-eu",
    )
    assert scopes(entry) == {"AmazonEKSViewPolicy": "namespaces [shop]"}


def test_a_role_shared_by_two_policies_gets_one_merged_entry():
    entries = desired_entries(
        [
            policy("team-b", "shared", [write(["deployments"], ["b"], effect="allow")]),
            policy("team-a", "shared", [read(["pods"], ["a"])]),
            policy("other", "other", [read(["pods"], ["a"])]),
        ],
        "prod-eu",
    )
    assert [e.principal_arn for e in entries] == [role_arn("other"), role_arn("shared")]
    shared = entries[1]
    assert shared.policies == ("team-a", "team-b")
    assert shared.tags["eksgate-policies"] == "team-a team-b"
    assert scopes(shared) == {
        "AmazonEKSEditPolicy": "namespaces [b]",
        "AmazonEKSViewPolicy": "namespaces [a]",
    }


def test_only_policies_whose_cluster_globs_match_contribute():
    policies = [
        policy("prod", "prod", [read(["pods"], ["a"])], clusters=("prod-*",)),
        policy("demo", "demo", [read(["pods"], ["a"])], clusters=("demo",)),
    ]
    assert [e.policies for e in desired_entries(policies, "prod-eu")] == [("prod",)]
    assert desired_entries(policies, "staging") == []


@pytest.mark.parametrize(
    "rule, reason",
    [
        (
            write(["clusterroles"], effect="allow", verbs=["create"]),
            "writes to cluster-scoped resources clusterroles",
        ),
        (
            write(["namespaces"], ["shop"], effect="allow", verbs=["delete"]),
            "writes to cluster-scoped resources namespaces",
        ),
        (write(["*"], effect="allow", verbs=["*"]), "writes to '*' resources with no namespaces"),
        (
            {"effect": "allow", "verbs": ["create"], "nonResourceURLs": ["/metrics"]},
            "non-resource URLs /metrics",
        ),
    ],
)
def test_rules_that_would_need_cluster_admin_are_refused(rule, reason):
    with pytest.raises(ClusterAdminRequired) as raised:
        desired_entries([policy("too-much", "r", [read(["pods"], ["a"]), rule])], "prod-eu")
    message = str(raised.value)
    assert "AmazonEKSClusterAdminPolicy" in message
    assert "policy 'too-much' rule rules[1] (too-much.yaml:" in message
    assert reason in message


def test_every_refusal_is_reported_at_once():
    with pytest.raises(ClusterAdminRequired) as raised:
        desired_entries(
            [
                policy("a", "a", [write(["nodes"], effect="allow")]),
                policy("b", "b", [write(["*"], effect="allow")]),
            ],
            "prod-eu",
        )
    assert len(raised.value.problems) == 2


def test_discovery_reads_need_no_access_policy():
    rule = {"effect": "allow", "verbs": ["get"], "nonResourceURLs": ["/version", "/apis/*"]}
    [entry] = desired_entries([policy("p", "r", [rule])], "prod-eu")
    assert entry.associations == ()


def test_reading_secrets_grants_view_only_and_warns():
    [entry] = desired_entries([policy("p", "r", [read(["pods", "secrets"], ["shop"])])], "prod-eu")
    assert scopes(entry) == {"AmazonEKSViewPolicy": "namespaces [shop]"}
    [warning] = entry.warnings
    assert "policy 'p' rule rules[0]" in warning
    assert "the gateway cannot read Secrets with this role" in warning


def test_reads_view_does_not_cover_are_warned_about_without_widening_the_policy():
    [entry] = desired_entries(
        [
            policy(
                "p",
                "r",
                [
                    read(["namespaces", "nodes", "clusterroles"]),
                    read(["widgets"], ["shop"]),  # a custom resource
                ],
            )
        ],
        "prod-eu",
    )
    assert scopes(entry) == {"AmazonEKSViewPolicy": "cluster"}
    assert any(
        "does not grant get, list, watch on nodes, clusterroles" in w for w in entry.warnings
    )
    assert any("on widgets" in w for w in entry.warnings)


def test_a_rule_the_policy_grants_nothing_of_does_not_widen_the_scope():
    [entry] = desired_entries(
        [policy("p", "r", [read(["pods"], ["shop"]), read(["nodes"])])], "prod-eu"
    )
    assert scopes(entry) == {"AmazonEKSViewPolicy": "namespaces [shop]"}
    assert any("on nodes" in w for w in entry.warnings)


def test_namespace_globs_eks_cannot_express_are_widened_with_a_warning():
    [entry] = desired_entries(
        [policy("p", "r", [read(["pods"], ["team-?-prod", "dev-*", "x"])])], "prod-eu"
    )
    assert entry.associations[0].scope == AccessScope("namespace", ("dev-*", "team-*", "x"))
    assert any("'team-?-prod' is scoped as 'team-*'" in w for w in entry.warnings)


def test_the_result_is_the_same_whatever_the_order_of_policies_and_rules():
    rules = [read(["pods"], ["b", "a"]), write(["deployments"], ["c"]), read(["services"], ["a"])]
    one = desired_entries([policy("x", "r", rules), policy("y", "s", rules[:1])], "prod-eu")
    two = desired_entries([policy("y", "s", rules[:1]), policy("x", "r", rules[::-1])], "prod-eu")
    assert [(e.principal_arn, e.associations) for e in one] == [
        (e.principal_arn, e.associations) for e in two
    ]
    assert one[0].associations[0].scope.namespaces == ("c",)
    assert [a.policy_arn for a in one[0].associations] == sorted([EDIT, VIEW])


def test_shipped_policies_for_prod_eu():
    entries = {
        e.principal_arn: e for e in desired_entries(load_policies(DEFAULT_POLICY_DIR), "prod-eu")
    }
    # readonly-direct names only the demo cluster.
    assert set(entries) == {
        role_arn("eksgate-ci-agent"),
        role_arn("eksgate-engineer"),
        role_arn("eksgate-engineer-debug"),
    }
    # exec and port-forward are the debug grant's alone: Edit in shop and payments.
    assert scopes(entries[role_arn("eksgate-engineer-debug")]) == {
        "AmazonEKSEditPolicy": "namespaces [payments, shop]"
    }
    ci = entries[role_arn("eksgate-ci-agent")]
    assert scopes(ci) == {
        "AmazonEKSViewPolicy": "namespaces [shop]",
        "AmazonEKSEditPolicy": "namespaces [shop]",
    }
    # read-shop reads secrets; View has none, but the Edit association in shop does.
    assert not any("cannot read Secrets" in w for w in ci.warnings)
    assert any(
        "reading and writing Secrets comes with AmazonEKSEditPolicy on namespaces [shop]" in w
        for w in ci.warnings
    )
    engineer = entries[role_arn("eksgate-engineer")]
    assert {a.policy_arn for a in engineer.associations} == {VIEW, EDIT, ADMIN}
    assert scopes(engineer) == {
        "AmazonEKSViewPolicy": "cluster",  # read-cluster names no namespaces
        "AmazonEKSEditPolicy": "namespaces [default, payments, shop]",
        "AmazonEKSAdminPolicy": "namespaces [payments, shop]",  # the two-person RBAC rule
    }


def test_the_cluster_scoped_table_agrees_with_the_real_discovery_documents():
    cluster_scoped: set[str] = set()
    namespaced: set[str] = set()
    for path in DISCOVERY_DIR.glob("*.json"):
        document = json.loads(path.read_text())
        if document.get("kind") != "APIResourceList":
            continue
        for resource in document["resources"]:
            if "/" not in resource["name"]:
                (namespaced if resource["namespaced"] else cluster_scoped).add(resource["name"])
    assert cluster_scoped <= CLUSTER_SCOPED
    assert not namespaced & CLUSTER_SCOPED
