"""``eksgate infra render``: CloudFormation for the policy roles and their EKS access entries.

The output is merged into ``chalice package`` like infra/template.yaml is::

    eksgate infra render --stage prod --output out/infra.json
    chalice package --stage prod --merge-template out/infra.json out/

What it adds to infra/template.yaml's tables:

- one ``AWS::IAM::Role`` per role ARN the stage's policies name. Only the eksgate function's
  role may assume it, and only with a SourceIdentity and exactly the session tags the broker
  sets (chalicelib/credentials/role_credentials.py), naming one of the policies that use the
  role. The role carries no IAM permissions: an EKS token is a presigned GetCallerIdentity,
  and what the role may do in the cluster is its access entry.
- per cluster of the stage (EKSGATE_CLUSTERS) and role, an ``AWS::EKS::AccessEntry`` with the
  access policies of eksgate.access_entries.desired. An access entry can only be made in the
  cluster's region, so each one carries a Condition on ``AWS::Region``: deployed elsewhere, the
  stack skips it and ``eksgate access-entries apply`` (run in that region) does the job.

The roles are created with the name in the policy's ARN (CAPABILITY_NAMED_IAM), in the account
the stack is deployed to: deploy in the account the policies' ARNs name.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from chalicelib.policy import Policy, PolicyError, load_policies
from chalicelib.policy.model import glob_match
from eksgate.access_entries.desired import desired_entries
from eksgate.access_entries.errors import AccessEntryError
from eksgate.access_entries.model import (
    MANAGED_BY_TAG,
    MANAGED_BY_VALUE,
    POLICIES_TAG,
    policies_tag_value,
)
from eksgate.access_entries.stages import PROJECT_DIR, load_stage
from eksgate.http_api import REST_API, RouteError, app_routes, http_api_resources

# What ``chalice package`` names the role of the app's functions (resource "default-role").
DEFAULT_FUNCTION_ROLE = "DefaultRole"
MAX_SESSION_DURATION = 3600
# The session tags chalicelib.credentials.role_credentials sets; the trust policy allows no others.
SESSION_TAG_KEYS = (
    "eksgate-subject",
    "eksgate-issuer",
    "eksgate-policy",
    "eksgate-cluster",
    "eksgate-mode",
)
_ROLE_ARN = re.compile(
    r"^arn:aws[a-z-]*:iam::\d{12}:role(?P<path>/(?:[\x21-\x7e]+/)?)"
    r"(?P<name>[\w+=,.@-]{1,64})$"
)


class InfraRenderError(Exception):
    """The stage cannot be rendered as it is; the message says what to change."""


def _pascal(text: str) -> str:
    """``eksgate-ci-agent`` -> ``EksgateCiAgent``: a stable, alphanumeric logical id part."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", text))


def split_role_arn(arn: str) -> tuple[str, str]:
    """``arn:aws:iam::1:role/team/x`` -> (``/team/``, ``x``); InfraRenderError if not a role."""
    match = _ROLE_ARN.match(arn)
    if not match:
        raise InfraRenderError(f"{arn!r} is not an IAM role ARN eksgate can create")
    return match["path"], match["name"]


def _targets(stage_clusters: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    """(eksgate name, EKS name, region) per cluster, sorted; two names for one EKS cluster fail."""
    targets = []
    seen: dict[tuple[str, str], str] = {}
    for name in sorted(stage_clusters):
        item = stage_clusters[name] or {}
        eks_name, region = item.get("eks_name") or name, item.get("region", "")
        if (eks_name, region) in seen:
            raise InfraRenderError(
                f"clusters {seen[(eks_name, region)]!r} and {name!r} are both EKS cluster "
                f"{eks_name!r}{' in ' + region if region else ''}; one access entry per role "
                "and cluster is all EKS allows: keep one of them"
            )
        seen[(eks_name, region)] = name
        targets.append((name, eks_name, region))
    return targets


def _region_condition(region: str) -> str:
    return f"InRegion{_pascal(region)}"


def _trust_policy(function_role: str, policy_names: list[str]) -> dict[str, Any]:
    # A value that is already an ARN names a role chalice does not create (manage_iam_role off).
    principal: Any = (
        function_role
        if function_role.startswith("arn:")
        else {"Fn::GetAtt": [function_role, "Arn"]}
    )
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EksgateFunctionOnly",
                "Effect": "Allow",
                "Principal": {"AWS": principal},
                "Action": ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"],
                "Condition": {
                    # Every session says who it is for: CloudTrail and EKS audit join on it.
                    "StringLike": {"sts:SourceIdentity": "*"},
                    "StringEquals": {"aws:RequestTag/eksgate-policy": policy_names},
                    "ForAllValues:StringEquals": {"aws:TagKeys": list(SESSION_TAG_KEYS)},
                },
            }
        ],
    }


class _Ids:
    """Logical ids, refusing two different things that would get the same id."""

    def __init__(self, taken: Iterable[str] = ()) -> None:
        self._owners: dict[str, str] = {logical_id: "infra/template.yaml" for logical_id in taken}

    def claim(self, logical_id: str, owner: str) -> str:
        if len(logical_id) > 255:
            raise InfraRenderError(f"logical id for {owner} is over 255 characters")
        if self._owners.get(logical_id, owner) != owner:
            raise InfraRenderError(
                f"{owner} and {self._owners[logical_id]} would both be "
                f"CloudFormation resource {logical_id}; rename one"
            )
        self._owners[logical_id] = owner
        return logical_id


def _render(
    policies: tuple[Policy, ...] | list[Policy],
    stage_clusters: Mapping[str, Mapping[str, Any]],
    function_role: str,
    taken: Iterable[str] = (),
) -> tuple[dict[str, Any], dict[str, Any]]:
    targets = _targets(stage_clusters)
    ids = _Ids(taken)
    role_policies: dict[str, list[str]] = defaultdict(list)
    for policy in policies:
        if any(glob_match(pattern, name) for pattern in policy.clusters for name, _, _ in targets):
            for role_arn, _ in policy.role_rules():
                role_policies[role_arn].append(policy.name)

    resources: dict[str, Any] = {}
    role_ids: dict[str, str] = {}
    role_names: dict[str, str] = {}
    for arn in sorted(role_policies):
        path, name = split_role_arn(arn)
        if name.lower() in role_names:  # IAM role names are unique per account, any case
            raise InfraRenderError(
                f"roles {role_names[name.lower()]!r} and {arn!r} share the "
                "name; IAM needs role names unique in the account"
            )
        role_names[name.lower()] = arn
        names = sorted(role_policies[arn])
        logical_id = ids.claim(f"PolicyRole{_pascal(name)}", f"role {arn}")
        role_ids[arn] = logical_id
        properties: dict[str, Any] = {
            "RoleName": name,
            "Description": f"eksgate policy role for {', '.join(names)}; assumed only by the "
            "eksgate function",
            "MaxSessionDuration": MAX_SESSION_DURATION,
            "AssumeRolePolicyDocument": _trust_policy(function_role, names),
            "Tags": [
                {"Key": MANAGED_BY_TAG, "Value": MANAGED_BY_VALUE},
                {"Key": POLICIES_TAG, "Value": policies_tag_value(tuple(names))},
            ],
        }
        if path != "/":
            properties["Path"] = path
        resources[logical_id] = {"Type": "AWS::IAM::Role", "Properties": properties}

    conditions: dict[str, Any] = {}
    for cluster, eks_name, region in targets:
        for entry in desired_entries(policies, cluster):
            _, role_name = split_role_arn(entry.principal_arn)
            logical_id = ids.claim(
                f"AccessEntry{_pascal(cluster)}{_pascal(role_name)}",
                f"access entry of {entry.principal_arn} on {cluster}",
            )
            resource: dict[str, Any] = {
                "Type": "AWS::EKS::AccessEntry",
                "Properties": {
                    "ClusterName": eks_name,
                    "PrincipalArn": {"Fn::GetAtt": [role_ids[entry.principal_arn], "Arn"]},
                    "Type": entry.type,
                    "AccessPolicies": [
                        {"PolicyArn": a.policy_arn, "AccessScope": a.scope.to_cloudformation()}
                        for a in entry.associations
                    ],
                    "Tags": [{"Key": k, "Value": v} for k, v in sorted(entry.tags.items())],
                },
            }
            if region:
                condition = ids.claim(_region_condition(region), f"condition for {region}")
                conditions[condition] = {"Fn::Equals": [{"Ref": "AWS::Region"}, region]}
                resource["Condition"] = condition
            resources[logical_id] = resource
    return resources, conditions


def render_policy_resources(
    policies: tuple[Policy, ...] | list[Policy],
    stage_clusters: Mapping[str, Mapping[str, Any]],
    function_role_logical_id: str,
) -> dict[str, Any]:
    """CloudFormation ``Resources`` for the roles of ``policies`` and their access entries.

    ``stage_clusters`` is EKSGATE_CLUSTERS (name -> {"region", "eks_name"}); only roles of
    policies naming one of those clusters are rendered. ``function_role_logical_id`` is the
    logical id of the app function's role (``DefaultRole`` in ``chalice package`` output), or a
    role ARN when the stage brings its own role. Access entries of clusters with a region carry
    a ``Condition`` defined by render_policy_conditions. Logical ids are derived from names
    (``PolicyRoleEksgateCiAgent``, ``AccessEntryProdEuEksgateCiAgent``), so they stay stable as
    policies come and go. Raises ClusterAdminRequired and InfraRenderError.
    """
    return _render(policies, stage_clusters, function_role_logical_id)[0]


def render_policy_conditions(
    policies: tuple[Policy, ...] | list[Policy], stage_clusters: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """CloudFormation ``Conditions`` the access entries use: "the stack is in region R"."""
    return _render(policies, stage_clusters, DEFAULT_FUNCTION_ROLE)[1]


class _TemplateLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form intrinsics (``!Ref x`` -> ``{"Ref": "x"}``)."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    tag = suffix.lstrip("!")
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {tag if tag in ("Ref", "Condition") else f"Fn::{tag}": value}


_TemplateLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path) -> dict[str, Any]:
    """A CloudFormation template file (YAML or JSON) as a dict."""
    with open(path, encoding="utf-8") as handle:
        data = yaml.load(handle, Loader=_TemplateLoader)
    if not isinstance(data, dict):
        raise InfraRenderError(f"{path} is not a CloudFormation template")
    return data


def _function_role(settings: Mapping[str, Any]) -> str:
    if settings.get("manage_iam_role") is False:
        arn = settings.get("iam_role_arn")
        if not arn:
            raise InfraRenderError(
                "the stage sets manage_iam_role: false but no iam_role_arn; "
                "the policy roles need to know which role to trust"
            )
        return str(arn)
    if settings.get("autogen_policy") is False:
        # With a policy file Chalice gives each function a role of its own; the API handler's
        # is the one that assumes the policy roles.
        return API_HANDLER_ROLE
    return DEFAULT_FUNCTION_ROLE


API_HANDLER_ROLE = "ApiHandlerRole"
TABLE_NAME_SETTINGS = {
    "AuditTable": "EKSGATE_AUDIT_TABLE",
    "ApprovalsTable": "EKSGATE_APPROVALS_TABLE",
    "IdempotencyTable": "EKSGATE_IDEMPOTENCY_TABLE",
}


def render_merge_template(
    stage: str,
    project_dir: Path | str = PROJECT_DIR,
    *,
    policy_dir: Path | str | None = None,
    function_role: str | None = None,
    api: str = "http",
) -> dict[str, Any]:
    """infra/template.yaml plus the stage's policy roles and access entries, as one template.

    Policies come from ``policy_dir`` (default: the project's chalicelib/policies), clusters
    from the stage's EKSGATE_CLUSTERS, the trusted function role from the stage's chalice
    settings unless ``function_role`` names it. ``api`` "http" (the default) also puts an HTTP
    API in front of the function in place of Chalice's REST API (``eksgate.http_api``); "rest"
    keeps the REST API.
    """
    if api not in ("http", "rest"):
        raise InfraRenderError(f"api must be 'http' or 'rest', not {api!r}")
    project = Path(project_dir)
    config = load_stage(stage, project)
    template = load_template(project / "infra" / "template.yaml")
    policies = load_policies(
        Path(policy_dir) if policy_dir else project / "chalicelib" / "policies"
    )
    stage_clusters = {
        t.name: {"region": t.region, "eks_name": t.eks_name} for t in config.clusters.values()
    }
    existing = _logical_ids(template)
    resources, conditions = _render(
        policies, stage_clusters, function_role or _function_role(config.settings), taken=existing
    )
    merged = copy.deepcopy(template)
    merged["Description"] = f"{template.get('Description', 'eksgate')} (stage {stage})"
    merged["Resources"] = {**merged.get("Resources", {}), **resources}
    # The tables get the names the stage's function is configured with, so the app and the
    # stack agree without a second source of truth.
    bucket = merged["Resources"].get("AuditExportBucket")
    if bucket:
        # Per stage, so one stage's function can never write another's export.
        bucket["Properties"]["BucketName"] = {
            "Fn::Sub": f"eksgate-{stage}-audit-export-${{AWS::AccountId}}"
        }
    anchors = merged["Resources"].get("AuditAnchorBucket")
    if anchors:
        # Per stage, and kept (undeletable) as long as the stage keeps its audit records.
        properties = anchors["Properties"]
        properties["BucketName"] = {"Fn::Sub": f"eksgate-{stage}-audit-anchors-${{AWS::AccountId}}"}
        retention = properties["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]
        retention["Days"] = int(config.environment.get("EKSGATE_AUDIT_RETENTION_DAYS", "90"))
    for logical_id, variable in TABLE_NAME_SETTINGS.items():
        name = config.environment.get(variable)
        if name and logical_id in merged["Resources"]:
            merged["Resources"][logical_id]["Properties"]["TableName"] = name
    if conditions:
        merged["Conditions"] = {**template.get("Conditions", {}), **conditions}
    if api == "http":
        try:
            front_door = http_api_resources(stage, app_routes(project))
        except RouteError as exc:
            raise InfraRenderError(str(exc)) from exc
        clash = (set(front_door["Resources"]) - {REST_API}) & _logical_ids(merged)
        if clash:
            raise InfraRenderError(
                f"the HTTP API's {', '.join(sorted(clash))} and the template's would be one "
                "CloudFormation resource; rename the template's"
            )
        merged["Resources"] = {**merged["Resources"], **front_door["Resources"]}
        merged["Outputs"] = {**merged.get("Outputs", {}), **front_door["Outputs"]}
    return merged


def _logical_ids(template: Mapping[str, Any]) -> set[str]:
    """Every logical id a template defines (resources, conditions, outputs)."""
    return {
        *template.get("Resources", {}),
        *template.get("Conditions", {}),
        *template.get("Outputs", {}),
    }


def cmd_render(args: Any) -> int:
    """Write the merge template as JSON to ``args.output`` (a path, or ``-`` for stdout).

    Optional args: ``project_dir``, ``policies`` (directory), ``function_role`` (logical id or
    ARN), ``api`` ("http" or "rest"). 0 on success; 1 with a message on stderr, never a
    traceback.
    """
    try:
        template = render_merge_template(
            args.stage,
            getattr(args, "project_dir", None) or PROJECT_DIR,
            policy_dir=getattr(args, "policies", None),
            function_role=getattr(args, "function_role", None),
            api=getattr(args, "api", None) or "http",
        )
        text = json.dumps(template, indent=2) + "\n"
        output = getattr(args, "output", "-") or "-"
        if output == "-":
            sys.stdout.write(text)
        else:
            Path(output).parent.mkdir(parents=True, exist_ok=True)
            Path(output).write_text(text, encoding="utf-8")
        _report(template, output)
        return 0
    except PolicyError as exc:
        sys.stderr.write(f"eksgate: error: the policies have problems:\n{exc}\n")
    except (AccessEntryError, InfraRenderError, yaml.YAMLError, OSError) as exc:
        sys.stderr.write(f"eksgate: error: {exc}\n")
    return 1


def _report(template: Mapping[str, Any], output: str) -> None:
    """A summary on stderr, so ``--output -`` still pipes clean JSON."""
    resources = template.get("Resources", {})
    roles = [
        k
        for k, v in resources.items()
        if v.get("Type") == "AWS::IAM::Role" and k.startswith("PolicyRole")
    ]
    entries = [v for v in resources.values() if v.get("Type") == "AWS::EKS::AccessEntry"]
    regions = sorted(
        {
            c["Fn::Equals"][1]
            for c in template.get("Conditions", {}).values()
            if isinstance(c, dict) and "Fn::Equals" in c
        }
    )
    where = "stdout" if output == "-" else output
    sys.stderr.write(
        f"wrote {len(roles)} policy role(s) and {len(entries)} access entr"
        f"{'y' if len(entries) == 1 else 'ies'} to {where}\n"
    )
    routes = [v for v in resources.values() if v.get("Type") == "AWS::ApiGatewayV2::Route"]
    if routes:
        sys.stderr.write(
            f"front door: an HTTP API with {len(routes)} routes to the function (the REST API's "
            "endpoint turned off); EndpointURL names it\n"
        )
    else:
        sys.stderr.write("front door: Chalice's REST API (--api rest)\n")
    if regions:
        sys.stderr.write(
            f"access entries are created only when the stack is deployed in "
            f"{', '.join(regions)}; elsewhere run `eksgate access-entries apply` "
            "in the cluster's region\n"
        )
