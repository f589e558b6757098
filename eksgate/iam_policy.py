"""The eksgate function's own IAM policy: exactly the AWS calls its code makes, on named resources.

``chalice package``/``deploy`` read it from ``.chalice/policy-<stage>.json``
(``autogen_policy: false``); ``eksgate infra iam-policy --stage S`` writes it, and a test checks
that every AWS call in ``chalicelib/`` is covered and nothing more is granted.
"""

from __future__ import annotations

import ast
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from botocore.session import get_session

from chalicelib.policy import load_policies
from eksgate.access_entries.stages import PROJECT_DIR, load_stage

SERVICES = ("dynamodb", "sts", "secretsmanager", "eks", "s3")
# Calls made for the code by libraries and by Lambda itself, with the function's role:
# powertools Idempotency on its table, and Lambda polling the audit stream for audit_export.
LIBRARY_CALLS = {
    ("dynamodb", "GetItem"),
    ("dynamodb", "PutItem"),
    ("dynamodb", "UpdateItem"),
    ("dynamodb", "DeleteItem"),
    ("dynamodb", "DescribeStream"),
    ("dynamodb", "GetRecords"),
    ("dynamodb", "GetShardIterator"),
    ("dynamodb", "ListStreams"),
}
# IAM has no action for a transaction: each of its items is authorized as its own operation.
# The code's transactions put items (with conditions), so they need PutItem on their tables.
TRANSACTION_ACTIONS = {("dynamodb", "TransactWriteItems"): {("dynamodb", "PutItem")}}
# API operations whose IAM action has another name.
RENAMED_ACTIONS = {("s3", "ListObjectVersions"): {("s3", "ListBucketVersions")}}
LOG_ACTIONS = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]


def operations_by_method() -> dict[str, tuple[str, str]]:
    """boto3 method name -> (service, API operation), for the services the app uses."""
    from botocore import xform_name

    session = get_session()
    found: dict[str, tuple[str, str]] = {}
    for service in SERVICES:
        for operation in session.get_service_model(service).operation_names:
            found[xform_name(operation)] = (service, operation)
    return found


def calls_in_code(source_dir: Path = PROJECT_DIR / "chalicelib") -> set[tuple[str, str]]:
    """Every (service, operation) a boto3 client method in ``source_dir`` can make.

    Attribute references count, not only calls: code may pass ``client.update_item`` to a
    helper that calls it. A false positive only makes the coverage test stricter.
    """
    methods = operations_by_method()
    calls = set()
    for path in sorted(source_dir.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and node.attr in methods:
                call = methods[node.attr]
                calls |= TRANSACTION_ACTIONS.get(call) or RENAMED_ACTIONS.get(call) or {call}
    return calls


def _arns(kind: str, names: Iterable[str]) -> list[str]:
    return [kind.format(name=name) for name in sorted(set(names))]


def policy_document(stage: str, project_dir: Path = PROJECT_DIR) -> dict[str, Any]:
    """The least-privilege policy for ``stage``: its tables, secrets, clusters and roles."""
    config = load_stage(stage, project_dir)
    env = config.environment
    tables = [
        env["EKSGATE_AUDIT_TABLE"],
        env["EKSGATE_APPROVALS_TABLE"],
        env["EKSGATE_IDEMPOTENCY_TABLE"],
    ]
    clusters = json.loads(env.get("EKSGATE_CLUSTERS", "{}"))
    policies = load_policies(project_dir / "chalicelib" / "policies")
    roles = sorted(
        {p.role_arn for p in policies if any(p.applies_to_cluster(name) for name in clusters)}
    )
    table = "arn:aws:dynamodb:*:*:table/{name}"
    statements = [
        {"Sid": "Logs", "Effect": "Allow", "Action": LOG_ACTIONS, "Resource": "arn:aws:logs:*:*:*"},
        {
            "Sid": "Secrets",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue"],
            "Resource": _arns(
                "arn:aws:secretsmanager:*:*:secret:{name}-*",
                [env["EKSGATE_SIGNING_SECRET_ID"], env["EKSGATE_SLACK_SECRET_ID"]],
            ),
        },
        # Append-only: no UpdateItem or DeleteItem on the audit table, ever.
        {
            "Sid": "AuditAppendOnly",
            "Effect": "Allow",
            "Action": ["dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:Query"],
            "Resource": _arns(table, [tables[0]]) + _arns(table + "/index/*", [tables[0]]),
        },
        {
            "Sid": "AuditStream",
            "Effect": "Allow",
            "Action": [
                "dynamodb:DescribeStream",
                "dynamodb:GetRecords",
                "dynamodb:GetShardIterator",
            ],
            "Resource": _arns(table + "/stream/*", [tables[0]]),
        },
        {
            "Sid": "ListStreams",
            "Effect": "Allow",
            "Action": ["dynamodb:ListStreams"],
            "Resource": "*",
        },  # ListStreams takes no resource
        {
            "Sid": "Approvals",
            "Effect": "Allow",
            "Action": [
                "dynamodb:PutItem",
                "dynamodb:GetItem",
                "dynamodb:UpdateItem",
                "dynamodb:Query",
            ],
            "Resource": _arns(table, [tables[1]]) + _arns(table + "/index/*", [tables[1]]),
        },
        {
            "Sid": "Idempotency",
            "Effect": "Allow",
            "Action": [
                "dynamodb:PutItem",
                "dynamodb:GetItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
            ],
            "Resource": _arns(table, [tables[2]]),
        },
        {
            "Sid": "AssumePolicyRoles",
            "Effect": "Allow",
            "Action": ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"],
            "Resource": roles,
        },
        {
            "Sid": "DescribeClusters",
            "Effect": "Allow",
            "Action": ["eks:DescribeCluster"],
            "Resource": [
                f"arn:aws:eks:{c.get('region', '*')}:*:cluster/{c.get('eks_name', name)}"
                for name, c in sorted(clusters.items())
            ],
        },
        {
            "Sid": "AuditExport",
            "Effect": "Allow",
            "Action": ["s3:PutObject"],
            "Resource": [
                f"arn:aws:s3:::eksgate-{stage}-audit-export-*/*",
                # New anchors only: no s3:PutObjectRetention (the bucket's compliance-mode
                # default always applies), no delete, no bypass.
                f"arn:aws:s3:::eksgate-{stage}-audit-anchors-*/*",
            ],
        },
        {
            "Sid": "AuditAnchorsRead",
            "Effect": "Allow",
            "Action": ["s3:ListBucketVersions"],
            "Resource": f"arn:aws:s3:::eksgate-{stage}-audit-anchors-*",
        },
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def granted_actions(document: dict[str, Any]) -> set[tuple[str, str]]:
    actions = set()
    for statement in document["Statement"]:
        for action in statement["Action"]:
            service, _, operation = action.partition(":")
            actions.add((service, operation))
    return actions


def cmd_iam_policy(args: Any) -> int:
    try:
        document = policy_document(args.stage)
    except Exception as exc:  # a stage or policy problem: say it plainly
        print(f"eksgate: {exc}", file=sys.stderr)
        return 1
    path = PROJECT_DIR / ".chalice" / f"policy-{args.stage}.json"
    text = json.dumps(document, indent=2) + "\n"
    if args.check:
        current = path.read_text() if path.exists() else ""
        if current != text:
            print(
                f"eksgate: {path} is out of date; run `eksgate infra iam-policy --stage "
                f"{args.stage}`",
                file=sys.stderr,
            )
            return 1
        print(f"{path} is up to date")
        return 0
    path.write_text(text)
    print(f"wrote {path}", file=sys.stderr)
    return 0
