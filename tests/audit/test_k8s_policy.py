"""A Kubernetes audit Policy read with kube-apiserver's matching rules."""

from __future__ import annotations

import pytest

from chalicelib.audit.k8s_policy import Attributes, AuditPolicyError, level_for, load_policy


def policy(rules: str, extra: str = "") -> object:
    return load_policy(f"apiVersion: audit.k8s.io/v1\nkind: Policy\n{extra}rules:\n{rules}")


def pods(
    verb="get",
    namespace="shop",
    subresource="",
    name="web",
    user="ann",
    groups=("dev",),
    group="",
    resource="pods",
):
    return Attributes(
        username=user,
        groups=tuple(groups),
        verb=verb,
        is_resource_request=True,
        api_group=group,
        resource=resource,
        subresource=subresource,
        namespace=namespace,
        name=name,
        path=f"/api/v1/namespaces/{namespace}/pods",
    )


def version(verb="get", path="/version"):
    return Attributes(
        username="ann", groups=("dev",), verb=verb, is_resource_request=False, path=path
    )


def test_first_matching_rule_wins_and_no_match_is_none():
    p = policy(
        "  - level: None\n    verbs: [watch]\n  - level: RequestResponse\n"
        "    resources: [{group: '', resources: [secrets]}]\n"
    )
    assert level_for(p, pods(verb="watch", resource="secrets"))[0] == "None"
    assert level_for(p, pods(resource="secrets"))[0] == "RequestResponse"
    assert level_for(p, pods())[0] == "None"  # no rule matched


def test_users_groups_verbs_and_namespaces_must_all_match():
    p = policy(
        "  - level: Request\n    users: [ann]\n    userGroups: [ops, dev]\n"
        "    verbs: [get]\n    namespaces: [shop]\n  - level: Metadata\n"
    )
    assert level_for(p, pods())[0] == "Request"
    assert level_for(p, pods(user="bob"))[0] == "Metadata"
    assert level_for(p, pods(groups=("qa",)))[0] == "Metadata"
    assert level_for(p, pods(verb="list"))[0] == "Metadata"
    assert level_for(p, pods(namespace="kube-system"))[0] == "Metadata"


def test_empty_namespace_names_cluster_scoped_resources():
    p = policy("  - level: Request\n    namespaces: ['']\n")
    assert level_for(p, pods(namespace="", resource="namespaces"))[0] == "Request"
    assert level_for(p, pods())[0] == "None"


def test_resource_patterns_follow_kube_apiserver():
    p = policy(
        "  - level: Request\n    resources:\n      - group: ''\n"
        "        resources: ['pods/*', '*/scale']\n      - group: apps\n"
        "        resources: [deployments]\n        resourceNames: [web]\n"
    )
    assert level_for(p, pods(subresource="log"))[0] == "Request"
    # kube-apiserver's checker matches "pods/*" to pods itself too (it compares the resource
    # with what precedes "/*"), though the field's doc comment says subresources only.
    assert level_for(p, pods())[0] == "Request"
    assert level_for(p, pods(resource="services"))[0] == "None"
    assert level_for(p, pods(resource="services", subresource="log"))[0] == "None"
    assert (
        level_for(p, pods(resource="replicationcontrollers", subresource="scale"))[0] == "Request"
    )
    assert level_for(p, pods(group="apps", resource="deployments"))[0] == "Request"
    assert level_for(p, pods(group="apps", resource="deployments", name="api"))[0] == "None"
    assert level_for(p, pods(group="batch", resource="deployments"))[0] == "None"


def test_resource_and_non_resource_rules_never_cross():
    p = policy(
        "  - level: Request\n    resources: [{group: ''}]\n"
        "  - level: Metadata\n    nonResourceURLs: ['/healthz*', /version]\n"
    )
    assert level_for(p, version())[0] == "Metadata"
    assert level_for(p, version(path="/healthz/etcd"))[0] == "Metadata"
    assert level_for(p, version(path="/metrics"))[0] == "None"
    assert level_for(p, pods())[0] == "Request"
    everything = policy("  - level: Metadata\n    nonResourceURLs: ['*']\n")
    assert level_for(everything, version(path="/openapi/v3"))[0] == "Metadata"
    assert level_for(everything, pods())[0] == "None"
    only_urls = policy("  - level: Request\n    nonResourceURLs: ['/*']\n")
    assert level_for(only_urls, pods())[0] == "None"
    only_namespaces = policy("  - level: Request\n    namespaces: [shop]\n")
    assert level_for(only_namespaces, version())[0] == "None"


def test_omit_stages_of_policy_and_rule_are_united():
    p = policy(
        "  - level: Metadata\n    omitStages: [ResponseComplete]\n",
        extra="omitStages: [RequestReceived]\n",
    )
    assert set(level_for(p, pods())[1]) == {"RequestReceived", "ResponseComplete"}


HEAD = "apiVersion: audit.k8s.io/v1\nkind: Policy\n"


@pytest.mark.parametrize(
    "text, message",
    [
        ("apiVersion: audit.k8s.io/v1beta1\nkind: Policy\nrules: [{level: None}]", "apiVersion"),
        ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []", "non-empty"),
        (
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: Everything}]",
            "rules[0].level",
        ),
        ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None, verb: [get]}]", "verb"),
        ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None, users: ann}]", "users"),
        (
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [{level: None, omitStages: [Done]}]",
            "Done",
        ),
        (
            HEAD + "rules: [{level: None, nonResourceURLs: [/a], namespaces: [x]}]",
            "cannot be combined",
        ),
        (HEAD + "rules: [{level: None, nonResourceURLs: ['/a*b']}]", "may end with one *"),
        ("[unclosed", "not YAML"),
    ],
)
def test_bad_policy_files_are_refused_naming_the_field(text, message):
    with pytest.raises(AuditPolicyError, match=message.replace("[", r"\[").replace("*", r"\*")):
        load_policy(text, "audit-policy.yaml")


def test_omit_managed_fields_rule_overrides_the_policy_default():
    from chalicelib.audit.k8s_policy import matching_rule, omits_managed_fields

    p = policy(
        "  - level: Request\n    verbs: [get]\n    omitManagedFields: false\n  - level: Request\n",
        extra="omitManagedFields: true\n",
    )
    assert not omits_managed_fields(p, matching_rule(p, pods()))
    assert omits_managed_fields(p, matching_rule(p, pods(verb="list")))
    with pytest.raises(AuditPolicyError, match="omitManagedFields"):
        policy("  - level: Request\n    omitManagedFields: sometimes\n")
