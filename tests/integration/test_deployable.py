"""Deployable on AWS: the function's IAM policy covers exactly its calls, and `chalice package`
with the merge template gives a template cfn-lint accepts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from eksgate_local.stage import PROJECT_DIR

from eksgate.iam_policy import (
    LIBRARY_CALLS,
    LOG_ACTIONS,
    calls_in_code,
    granted_actions,
    policy_document,
)

# AssumeRole with SourceIdentity and Tags needs these two as well.
IMPLIED = {("sts", "AssumeRole"): {("sts", "SetSourceIdentity"), ("sts", "TagSession")}}
STAGES = ("dev", "prod")


def required_actions() -> set[tuple[str, str]]:
    calls = calls_in_code() | LIBRARY_CALLS
    for call in list(calls):
        calls |= IMPLIED.get(call, set())
    return calls


@pytest.mark.parametrize("stage", STAGES)
def test_every_aws_call_is_granted_and_nothing_more(stage):
    document = policy_document(stage)
    granted = granted_actions(document) - {tuple(a.split(":")) for a in LOG_ACTIONS}
    required = required_actions()
    assert required - granted == set(), "calls the code makes without permission"
    assert granted - required == set(), "permissions no code uses"


@pytest.mark.parametrize("stage", STAGES)
def test_the_audit_table_is_append_only_and_resources_are_named(stage):
    document = policy_document(stage)
    for statement in document["Statement"]:
        resources = statement["Resource"]
        resources = [resources] if isinstance(resources, str) else resources
        if any(r.endswith(f"table/eksgate-{stage}-audit") for r in resources):
            assert not {
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:BatchWriteItem",
            } & set(statement["Action"])
        if resources == ["*"] or resources == "*":
            assert statement["Action"] == ["dynamodb:ListStreams"]
    roles = next(s for s in document["Statement"] if s["Sid"] == "AssumePolicyRoles")
    assert roles["Resource"] and all(":role/" in arn for arn in roles["Resource"])


@pytest.mark.parametrize("stage", STAGES)
def test_the_committed_policy_files_are_up_to_date(stage):
    result = subprocess.run(
        [sys.executable, "-m", "eksgate.cli", "infra", "iam-policy", "--stage", stage, "--check"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


def test_chalice_package_with_the_merge_template_passes_cfn_lint(tmp_path):
    cfnlint_api = pytest.importorskip("cfnlint.api")
    project = tmp_path / "project"
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in files:
        source = PROJECT_DIR / name
        target = project / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            os.symlink(os.readlink(source), target)
        elif source.is_file():
            shutil.copy2(source, target)
    # The template is what is validated here; a real deploy packages the requirements too.
    (project / "requirements.txt").write_text("")
    merge = tmp_path / "merge.json"
    render = subprocess.run(
        [
            sys.executable,
            "-m",
            "eksgate.cli",
            "infra",
            "render",
            "--stage",
            "prod",
            "-o",
            str(merge),
        ],
        capture_output=True,
        text=True,
    )
    assert render.returncode == 0, render.stderr
    out = tmp_path / "out"
    package = subprocess.run(
        [
            str(Path(sys.executable).parent / "chalice"),
            "package",
            "--stage",
            "prod",
            "--merge-template",
            str(merge),
            str(out),
        ],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, "AWS_DEFAULT_REGION": "eu-west-1"},
        timeout=300,
    )
    assert package.returncode == 0, package.stdout + package.stderr
    template = json.loads((out / "sam.json").read_text())
    resources = template["Resources"]
    assert {
        "APIHandler",
        "AuditExport",
        "AuditTable",
        "AuditExportMapping",
        "PolicyRoleEksgateCiAgent",
        "AccessEntryProdEuEksgateCiAgent",
    } <= set(resources)
    handler = resources["APIHandler"]["Properties"]
    assert handler["Environment"]["Variables"]["EKSGATE_AUDIT_TABLE"] == "eksgate-prod-audit"
    assert resources["AuditTable"]["Properties"]["TableName"] == "eksgate-prod-audit"
    # The front door: the HTTP API merged in, Chalice's REST API kept but not callable.
    assert resources["HttpApi"]["Type"] == "AWS::ApiGatewayV2::Api"
    rest = resources["RestAPI"]
    assert rest["Type"] == "AWS::Serverless::Api"
    assert rest["Properties"]["DisableExecuteApiEndpoint"] is True
    assert rest["Properties"]["DefinitionBody"]["paths"]  # Chalice's own, merged into
    assert "${HttpApi}" in template["Outputs"]["EndpointURL"]["Value"]["Fn::Sub"]
    assert resources["AuditExport"]["Properties"]["Handler"]  # merged, not replaced
    definition = resources["RestAPI"]["Properties"]["DefinitionBody"]  # eksgate/api_definition.py
    greedy = definition["paths"]["/k8s/{cluster}/{proxy+}"]["get"]
    assert [p["name"] for p in greedy["parameters"]] == ["cluster", "proxy"]
    matches = cfnlint_api.lint(
        json.dumps(template), config=cfnlint_api.ManualArgs(regions=["eu-west-1"])
    )
    assert [str(m) for m in matches] == []
