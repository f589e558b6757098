"""An in-memory EKS access-entry service, held to botocore's own model of the EKS API.

moto does not implement access entries. This fake stands in for a boto3 EKS client: every
request is validated against the operation's input shape (as botocore would before sending),
every response against its output shape, and errors are ClientErrors with the codes EKS uses.
List calls page with a small default page size so callers' pagination is exercised.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import botocore.session
from botocore.exceptions import ClientError
from botocore.validate import validate_parameters

ACCOUNT = "123456789012"
REGION = "eu-west-1"
KNOWN_ACCESS_POLICIES = {
    f"arn:aws:eks::aws:cluster-access-policy/{name}"
    for name in (
        "AmazonEKSAdminPolicy",
        "AmazonEKSAdminViewPolicy",
        "AmazonEKSClusterAdminPolicy",
        "AmazonEKSEditPolicy",
        "AmazonEKSViewPolicy",
        "AmazonEKSSecretReaderPolicy",
    )
}
_OPERATIONS = {
    "list_access_entries": "ListAccessEntries",
    "describe_access_entry": "DescribeAccessEntry",
    "list_associated_access_policies": "ListAssociatedAccessPolicies",
    "create_access_entry": "CreateAccessEntry",
    "associate_access_policy": "AssociateAccessPolicy",
    "disassociate_access_policy": "DisassociateAccessPolicy",
    "delete_access_entry": "DeleteAccessEntry",
    "tag_resource": "TagResource",
}
_STATUS = {
    "ResourceNotFoundException": 404,
    "ResourceInUseException": 409,
    "InvalidParameterException": 400,
    "InvalidRequestException": 400,
}

_MODEL = botocore.session.get_session().get_service_model("eks")


def _public(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry as EKS shows it: no internal bookkeeping, no empty tag map."""
    return {k: v for k, v in entry.items() if k != "policies" and not (k == "tags" and not v)}


def client_error(code: str, message: str, operation: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": _STATUS.get(code, 400)},
        },
        operation,
    )


class FakeEks:
    """Clusters by name, each a dict principal ARN -> entry (with its associated policies)."""

    def __init__(self, clusters: tuple[str, ...] = ("prod-eu",), *, page_size: int = 2) -> None:
        self.clusters: dict[str, dict[str, dict[str, Any]]] = {c: {} for c in clusters}
        self.page_size = page_size
        self.calls: list[tuple[str, dict[str, Any]]] = []
        # operation name -> (ClientError to raise, calls to let through first)
        self._failures: dict[str, tuple[ClientError, int]] = {}
        self._clock = datetime(2026, 1, 1, tzinfo=UTC)

    # ---- test helpers ----------------------------------------------------------------------

    def fail(self, method: str, code: str, message: str, *, after: int = 0) -> None:
        """Make ``method`` raise ClientError ``code`` once ``after`` calls have succeeded."""
        self._failures[method] = (client_error(code, message, _OPERATIONS[method]), after)

    def add_entry(
        self,
        cluster: str,
        principal: str,
        *,
        tags: dict[str, str] | None = None,
        type: str = "STANDARD",
        policies: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """An entry made outside the code under test (by hand, or by an earlier run)."""
        self.create_access_entry(
            clusterName=cluster,
            principalArn=principal,
            type=type,
            **({"tags": tags} if tags else {}),
        )
        for policy_arn, scope in (policies or {}).items():
            self.associate_access_policy(
                clusterName=cluster, principalArn=principal, policyArn=policy_arn, accessScope=scope
            )
        self.calls.clear()

    def mutating_calls(self) -> list[str]:
        return [name for name, _ in self.calls if not name.startswith(("list_", "describe_"))]

    # ---- plumbing ---------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        params: dict[str, Any],
        handler: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> dict[str, Any]:
        operation = _MODEL.operation_model(_OPERATIONS[method])
        # Raises ParamValidationError exactly as a real client would, before any request.
        validate_parameters(params, operation.input_shape)
        self.calls.append((method, copy.deepcopy(params)))
        if method in self._failures:
            error, after = self._failures[method]
            if after <= 0:
                del self._failures[method]
                raise error
            self._failures[method] = (error, after - 1)
        response = handler(params)
        if operation.output_shape is not None:
            validate_parameters(response, operation.output_shape)
        return {
            **copy.deepcopy(response),
            "ResponseMetadata": {"HTTPStatusCode": 200, "RequestId": str(uuid.uuid4())},
        }

    def _now(self) -> datetime:
        self._clock = self._clock.replace(second=(self._clock.second + 1) % 60)
        return self._clock

    def _cluster(self, name: str, operation: str) -> dict[str, dict[str, Any]]:
        if name not in self.clusters:
            raise client_error(
                "ResourceNotFoundException", f"No cluster found for name: {name}.", operation
            )
        return self.clusters[name]

    def _entry(self, params: dict[str, Any], operation: str) -> dict[str, Any]:
        entries = self._cluster(params["clusterName"], operation)
        principal = params["principalArn"]
        if principal not in entries:
            raise client_error(
                "ResourceNotFoundException",
                "The specified principalArn could not be found. You can view "
                "your available access entries with 'list-access-entries'.",
                operation,
            )
        return entries[principal]

    def _page(self, items: list[Any], params: dict[str, Any], key: str) -> dict[str, Any]:
        size = min(params.get("maxResults", self.page_size), self.page_size)
        start = int(params.get("nextToken") or 0)
        answer: dict[str, Any] = {key: items[start : start + size]}
        if start + size < len(items):
            answer["nextToken"] = str(start + size)
        return answer

    # ---- the EKS API ------------------------------------------------------------------------

    def list_access_entries(self, **params: Any) -> dict[str, Any]:
        def handle(p: dict[str, Any]) -> dict[str, Any]:
            entries = self._cluster(p["clusterName"], "ListAccessEntries")
            principals = sorted(
                principal
                for principal, entry in entries.items()
                if "associatedPolicyArn" not in p or p["associatedPolicyArn"] in entry["policies"]
            )
            return self._page(principals, p, "accessEntries")

        return self._call("list_access_entries", params, handle)

    def describe_access_entry(self, **params: Any) -> dict[str, Any]:
        def handle(p: dict[str, Any]) -> dict[str, Any]:
            entry = self._entry(p, "DescribeAccessEntry")
            return {"accessEntry": _public(entry)}

        return self._call("describe_access_entry", params, handle)

    def list_associated_access_policies(self, **params: Any) -> dict[str, Any]:
        def handle(p: dict[str, Any]) -> dict[str, Any]:
            entry = self._entry(p, "ListAssociatedAccessPolicies")
            policies = [entry["policies"][arn] for arn in sorted(entry["policies"])]
            return {
                "clusterName": p["clusterName"],
                "principalArn": p["principalArn"],
                **self._page(policies, p, "associatedAccessPolicies"),
            }

        return self._call("list_associated_access_policies", params, handle)

    def create_access_entry(self, **params: Any) -> dict[str, Any]:
        def handle(p: dict[str, Any]) -> dict[str, Any]:
            entries = self._cluster(p["clusterName"], "CreateAccessEntry")
            principal = p["principalArn"]
            if not principal.startswith("arn:aws:iam::"):
                raise client_error(
                    "InvalidParameterException",
                    "The principalArn parameter format is not valid",
                    "CreateAccessEntry",
                )
            if principal in entries:
                raise client_error(
                    "ResourceInUseException",
                    "The specified access entry resource is already in use on this cluster.",
                    "CreateAccessEntry",
                )
            entry_type = p.get("type", "STANDARD")
            if entry_type not in (
                "STANDARD",
                "EC2_LINUX",
                "EC2_WINDOWS",
                "FARGATE_LINUX",
                "EC2",
                "HYBRID_LINUX",
            ):
                raise client_error(
                    "InvalidParameterException",
                    f"The type {entry_type} is not valid",
                    "CreateAccessEntry",
                )
            account = principal.split(":")[4]
            role_name = principal.rsplit("/", 1)[-1]
            now = self._now()
            entries[principal] = {
                "clusterName": p["clusterName"],
                "principalArn": principal,
                "kubernetesGroups": list(p.get("kubernetesGroups", [])),
                "accessEntryArn": f"arn:aws:eks:{REGION}:{account}:access-entry/"
                f"{p['clusterName']}/role/{account}/{role_name}/{uuid.uuid4()}",
                "createdAt": now,
                "modifiedAt": now,
                "tags": dict(p.get("tags") or {}),
                "username": p.get("username")
                or f"arn:aws:sts::{account}:assumed-role/{role_name}/{{{{SessionName}}}}",
                "type": entry_type,
                "policies": {},
            }
            return {"accessEntry": _public(entries[principal])}

        return self._call("create_access_entry", params, handle)

    def associate_access_policy(self, **params: Any) -> dict[str, Any]:
        def handle(p: dict[str, Any]) -> dict[str, Any]:
            operation = "AssociateAccessPolicy"
            entry = self._entry(p, operation)
            if entry["type"] != "STANDARD":
                raise client_error(
                    "InvalidRequestException",
                    "Access policies can only be associated with STANDARD access entries",
                    operation,
                )
            if p["policyArn"] not in KNOWN_ACCESS_POLICIES:
                raise client_error(
                    "ResourceNotFoundException",
                    f"The specified policy {p['policyArn']} was not found",
                    operation,
                )
            scope = p["accessScope"]
            namespaces = scope.get("namespaces", [])
            if scope.get("type") == "namespace" and not namespaces:
                raise client_error(
                    "InvalidParameterException",
                    "namespaces must be specified when the access scope type is namespace",
                    operation,
                )
            if scope.get("type") == "cluster" and namespaces:
                raise client_error(
                    "InvalidParameterException",
                    "namespaces cannot be specified when the access scope type is cluster",
                    operation,
                )
            now = self._now()
            previous = entry["policies"].get(p["policyArn"])
            entry["policies"][p["policyArn"]] = {
                "policyArn": p["policyArn"],
                # EKS answers with the namespaces list present (empty) for cluster scopes.
                "accessScope": {"type": scope.get("type"), "namespaces": list(namespaces)},
                "associatedAt": previous["associatedAt"] if previous else now,
                "modifiedAt": now,
            }
            return {
                "clusterName": p["clusterName"],
                "principalArn": p["principalArn"],
                "associatedAccessPolicy": entry["policies"][p["policyArn"]],
            }

        return self._call("associate_access_policy", params, handle)

    def disassociate_access_policy(self, **params: Any) -> dict[str, Any]:
        def handle(p: dict[str, Any]) -> dict[str, Any]:
            entry = self._entry(p, "DisassociateAccessPolicy")
            if p["policyArn"] not in entry["policies"]:
                raise client_error(
                    "ResourceNotFoundException",
                    f"The policy {p['policyArn']} is not associated with {p['principalArn']}",
                    "DisassociateAccessPolicy",
                )
            del entry["policies"][p["policyArn"]]
            return {}

        return self._call("disassociate_access_policy", params, handle)

    def delete_access_entry(self, **params: Any) -> dict[str, Any]:
        def handle(p: dict[str, Any]) -> dict[str, Any]:
            self._entry(p, "DeleteAccessEntry")
            # Deleting an entry removes its associated access policies with it, as in EKS.
            del self.clusters[p["clusterName"]][p["principalArn"]]
            return {}

        return self._call("delete_access_entry", params, handle)

    def tag_resource(self, **params: Any) -> dict[str, Any]:
        def handle(p: dict[str, Any]) -> dict[str, Any]:
            for entries in self.clusters.values():
                for entry in entries.values():
                    if entry["accessEntryArn"] == p["resourceArn"]:
                        entry["tags"].update(p["tags"])
                        return {}
            raise client_error(
                "NotFoundException", f"Resource {p['resourceArn']} not found", "TagResource"
            )

        return self._call("tag_resource", params, handle)
