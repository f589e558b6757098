"""CloudFormation for the policy roles and their access entries (eksgate infra render)."""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import replace

import pytest

from chalicelib.config import DEFAULT_POLICY_DIR
from chalicelib.credentials.role_credentials import role_session_for
from chalicelib.identity import Identity
from chalicelib.policy import load_policies
from eksgate.access_entries import ClusterAdminRequired, desired_entries
from eksgate.infra_render import (
    SESSION_TAG_KEYS,
    InfraRenderError,
    cmd_render,
    render_merge_template,
    render_policy_conditions,
    render_policy_resources,
)
from tests.access_entries.policies import ADMIN, EDIT, VIEW, policy, read, write

PROD = {"prod-eu": {"region": "eu-west-1", "eks_name": "prod-eu"}}
SHIPPED = load_policies(DEFAULT_POLICY_DIR)


def of_type(resources: dict, kind: str) -> dict:
    return {k: v for k, v in resources.items() if v["Type"] == kind}


def test_one_role_per_policy_role_for_the_stage_clusters():
    roles = of_type(render_policy_resources(SHIPPED, PROD, "DefaultRole"), "AWS::IAM::Role")
    # readonly-direct names only the demo cluster, which the prod stage does not serve.
    assert sorted(roles) == [
        "PolicyRoleEksgateCiAgent",
        "PolicyRoleEksgateEngineer",
        "PolicyRoleEksgateEngineerDebug",
    ]
    properties = roles["PolicyRoleEksgateCiAgent"]["Properties"]
    assert properties["RoleName"] == "eksgate-ci-agent"
    assert "Path" not in properties
    assert properties["MaxSessionDuration"] == 3600
    assert {"Key": "managed-by", "Value": "eksgate"} in properties["Tags"]
    assert "Policies" not in properties and "ManagedPolicyArns" not in properties


def test_only_the_eksgate_function_may_assume_a_role_and_only_as_the_broker_does():
    roles = render_policy_resources(SHIPPED, PROD, "DefaultRole")
    document = roles["PolicyRoleEksgateEngineer"]["Properties"]["AssumeRolePolicyDocument"]
    [statement] = document["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Principal"] == {"AWS": {"Fn::GetAtt": ["DefaultRole", "Arn"]}}
    assert statement["Action"] == ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"]
    assert statement["Condition"] == {
        "StringLike": {"sts:SourceIdentity": "*"},
        "StringEquals": {"aws:RequestTag/eksgate-policy": ["engineers"]},
        "ForAllValues:StringEquals": {"aws:TagKeys": list(SESSION_TAG_KEYS)},
    }


def test_the_trusted_session_tags_are_the_ones_the_broker_sets():
    session = role_session_for(
        Identity("sub", "https://issuer"), "arn:aws:iam::1:role/r", "engineers", "prod-eu"
    )
    assert {key for key, _ in session.tags} == set(SESSION_TAG_KEYS)
    assert session.source_identity


def test_a_shared_role_trusts_sessions_for_each_of_its_policies():
    policies = [
        policy("team-b", "shared", [read(["pods"], ["b"])]),
        policy("team-a", "shared", [read(["pods"], ["a"])]),
    ]
    [role] = of_type(
        render_policy_resources(policies, PROD, "DefaultRole"), "AWS::IAM::Role"
    ).values()
    condition = role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Condition"]
    assert condition["StringEquals"]["aws:RequestTag/eksgate-policy"] == ["team-a", "team-b"]


def test_role_paths_and_a_function_role_given_as_an_arn():
    shared = replace(
        policy("p", "x", [read(["pods"])]), role_arn="arn:aws:iam::123456789012:role/teams/shop/x"
    )
    resources = render_policy_resources([shared], PROD, "arn:aws:iam::123456789012:role/fn")
    properties = resources["PolicyRoleX"]["Properties"]
    assert properties["Path"] == "/teams/shop/"
    assert properties["RoleName"] == "x"
    statement = properties["AssumeRolePolicyDocument"]["Statement"][0]
    assert statement["Principal"] == {"AWS": "arn:aws:iam::123456789012:role/fn"}


def test_an_access_entry_per_matching_cluster_with_the_desired_policies():
    clusters = {
        "prod-eu": {"region": "eu-west-1", "eks_name": "eks-prod-eu"},
        "prod-us": {"region": "us-east-1"},
        "demo": {"region": "us-east-1"},
    }
    resources = render_policy_resources(SHIPPED, clusters, "DefaultRole")
    entries = of_type(resources, "AWS::EKS::AccessEntry")
    assert sorted(entries) == [
        "AccessEntryDemoEksgateCiAgent",
        "AccessEntryDemoEksgateEngineer",
        "AccessEntryDemoEksgateEngineerDebug",
        "AccessEntryDemoEksgateReadonly",
        "AccessEntryProdEuEksgateCiAgent",
        "AccessEntryProdEuEksgateEngineer",
        "AccessEntryProdEuEksgateEngineerDebug",
        "AccessEntryProdUsEksgateCiAgent",
        "AccessEntryProdUsEksgateEngineer",
        "AccessEntryProdUsEksgateEngineerDebug",
    ]
    engineer = entries["AccessEntryProdEuEksgateEngineer"]
    assert engineer["Condition"] == "InRegionEuWest1"
    properties = engineer["Properties"]
    assert properties["ClusterName"] == "eks-prod-eu"
    assert entries["AccessEntryProdUsEksgateEngineer"]["Properties"]["ClusterName"] == "prod-us"
    assert properties["PrincipalArn"] == {"Fn::GetAtt": ["PolicyRoleEksgateEngineer", "Arn"]}
    assert properties["Type"] == "STANDARD"
    assert properties["AccessPolicies"] == [
        {
            "PolicyArn": ADMIN,
            "AccessScope": {"Type": "namespace", "Namespaces": ["payments", "shop"]},
        },
        {
            "PolicyArn": EDIT,
            "AccessScope": {"Type": "namespace", "Namespaces": ["default", "payments", "shop"]},
        },
        {"PolicyArn": VIEW, "AccessScope": {"Type": "cluster"}},
    ]
    [desired] = [
        e
        for e in desired_entries(SHIPPED, "prod-eu")
        if e.principal_arn.endswith("eksgate-engineer")
    ]
    assert {t["Key"]: t["Value"] for t in properties["Tags"]} == desired.tags
    assert render_policy_conditions(SHIPPED, clusters) == {
        "InRegionEuWest1": {"Fn::Equals": [{"Ref": "AWS::Region"}, "eu-west-1"]},
        "InRegionUsEast1": {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]},
    }


def test_logical_ids_are_alphanumeric_and_stable_as_policies_come_and_go():
    before = render_policy_resources(SHIPPED, PROD, "DefaultRole")
    assert before == render_policy_resources(list(reversed(SHIPPED)), PROD, "DefaultRole")
    assert all(re.fullmatch(r"[A-Za-z0-9]{1,255}", logical_id) for logical_id in before)
    more = [*SHIPPED, policy("newcomer", "eksgate-newcomer", [read(["pods"], ["a"])])]
    after = render_policy_resources(more, PROD, "DefaultRole")
    assert {k: v for k, v in after.items() if k in before} == before
    assert set(after) - set(before) == {
        "PolicyRoleEksgateNewcomer",
        "AccessEntryProdEuEksgateNewcomer",
    }


def test_names_that_would_collide_are_refused():
    policies = [policy("a", "team-x", [read(["pods"])]), policy("b", "team_x", [read(["pods"])])]
    with pytest.raises(InfraRenderError, match="PolicyRoleTeamX"):
        render_policy_resources(policies, PROD, "DefaultRole")
    aliases = {
        "one": {"region": "eu-west-1", "eks_name": "c"},
        "two": {"region": "eu-west-1", "eks_name": "c"},
    }
    with pytest.raises(InfraRenderError, match="both EKS cluster 'c'"):
        render_policy_resources(SHIPPED, aliases, "DefaultRole")


def test_cluster_admin_rules_stop_the_render():
    with pytest.raises(ClusterAdminRequired):
        render_policy_resources(
            [policy("p", "r", [write(["nodes"], effect="allow")])], PROD, "DefaultRole"
        )


def test_the_merge_template_is_the_infra_tables_plus_the_stage_roles_and_entries():
    template = render_merge_template("prod")
    json.dumps(template)  # JSON-able: no YAML leftovers
    resources = template["Resources"]
    assert {"AuditTable", "ApprovalsTable", "IdempotencyTable"} <= set(resources)
    assert {"PolicyRoleEksgateCiAgent", "AccessEntryProdEuEksgateCiAgent"} <= set(resources)
    assert template["Conditions"] == {
        "InRegionEuWest1": {"Fn::Equals": [{"Ref": "AWS::Region"}, "eu-west-1"]}
    }
    assert template["AWSTemplateFormatVersion"] == "2010-09-09"


def test_cmd_render_writes_json_and_fails_cleanly(tmp_path, capsys):
    output = tmp_path / "out" / "infra.json"
    assert cmd_render(argparse.Namespace(stage="prod", output=str(output))) == 0
    assert json.loads(output.read_text()) == render_merge_template("prod")
    assert "wrote 3 policy role(s) and 3 access entries" in capsys.readouterr().err
    assert cmd_render(argparse.Namespace(stage="nope", output="-")) == 1
    err = capsys.readouterr().err
    assert "no stage 'nope'" in err and "Traceback" not in err
