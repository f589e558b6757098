"""``kubectl auth can-i`` answered from the eksgate policy, not from the cluster's RBAC.

The cluster's RBAC answers for the policy's role, which is broader than what the gateway lets
through; the gateway is the enforcement point, so its policy is what the caller must hear.
``access_review`` answers a SelfSubjectAccessReview (authorization.k8s.io/v1) with the same
engine the gateway decides with (``chalicelib.policy.evaluate``) on the same request type
(``KubeRequest``): allowed; denied with the rule's reason; or not allowed with "approval
required" in the reason (the review has no third answer). ``rules_review`` answers a
SelfSubjectRulesReview with what is allowed outright and marks the answer incomplete when
rules needing approval or denying exist, which a rules list cannot express.

A question with wildcards (``kubectl auth can-i '*' '*'``) is asked about every request it
covers: it is allowed only if an allow rule covers all of them and no deny or approval rule
covers any. Both functions are pure: the gateway passes the verified session's policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.errors import BadRequest
from chalicelib.kube.request import KubeRequest, is_discovery
from chalicelib.policy.engine import describe_request, evaluate
from chalicelib.policy.model import Policy, Rule, glob_match

API_VERSION = "authorization.k8s.io/v1"
RESOURCE_FIELDS = ("namespace", "verb", "group", "version", "resource", "subresource", "name")
NON_RESOURCE_FIELDS = ("path", "verb")
DISCOVERY_NON_RESOURCE_URLS = (
    "/api",
    "/api/*",
    "/apis",
    "/apis/*",
    "/healthz",
    "/livez",
    "/readyz",
    "/openapi",
    "/openapi/*",
    "/version",
    "/version/",
)


def _strings(attributes: Any, fields: tuple[str, ...], where: str) -> dict[str, str]:
    if not isinstance(attributes, Mapping):
        raise BadRequest(f"spec.{where} must be an object")
    values = {}
    for name in fields:
        value = attributes.get(name, "")
        if not isinstance(value, str):
            raise BadRequest(f"spec.{where}.{name} must be a string")
        values[name] = value
    return values


def _review_spec(review: Any, kind: str) -> Mapping[str, Any]:
    if not isinstance(review, Mapping) or review.get("kind") != kind:
        raise BadRequest(f"expected a {kind}")
    if review.get("apiVersion") not in (API_VERSION, "authorization.k8s.io/v1beta1"):
        raise BadRequest(f"{kind} apiVersion must be {API_VERSION}")
    spec = review.get("spec")
    if not isinstance(spec, Mapping):
        raise BadRequest(f"{kind}.spec must be an object")
    return spec


def review_request(review: Any) -> KubeRequest:
    """The request a SelfSubjectAccessReview asks about; BadRequest if it is malformed."""
    spec = _review_spec(review, "SelfSubjectAccessReview")
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if (resource is None) == (non_resource is None):
        raise BadRequest(
            "exactly one of spec.resourceAttributes and spec.nonResourceAttributes is required"
        )
    if non_resource is not None:
        values = _strings(non_resource, NON_RESOURCE_FIELDS, "nonResourceAttributes")
        if not values["verb"] or not values["path"].startswith("/"):
            raise BadRequest("spec.nonResourceAttributes needs a verb and a path starting with /")
        return KubeRequest(verb=values["verb"], path=values["path"], is_resource_request=False)
    values = _strings(resource, RESOURCE_FIELDS, "resourceAttributes")
    if not values["verb"] or not values["resource"]:
        raise BadRequest("spec.resourceAttributes needs a verb and a resource")
    prefix = f"/apis/{values['group']}" if values["group"] else "/api"
    path = "/".join(
        part
        for part in (
            prefix,
            values["version"] or "*",
            f"namespaces/{values['namespace']}" if values["namespace"] else "",
            values["resource"],
            values["name"],
            values["subresource"],
        )
        if part
    )
    return KubeRequest(
        verb=values["verb"],
        path=path,
        api_prefix="apis" if values["group"] else "api",
        api_group=values["group"],
        api_version=values["version"],
        namespace=values["namespace"],
        resource=values["resource"],
        subresource=values["subresource"],
        name=values["name"],
    )


def _is_wildcard(request: KubeRequest) -> bool:
    return "*" in (request.verb, request.api_group, request.resource, request.subresource)


def _could_cover_part(rule: Rule, request: KubeRequest) -> bool:
    """Could ``rule`` decide some concrete request that ``request`` (with wildcards, or with
    no name) stands for? Conservative: when unsure, yes."""
    if not (request.verb == "*" or "*" in rule.verbs or request.verb in rule.verbs):
        return False
    if not request.is_resource_request:
        return rule.matches(request)
    if not rule.resources:
        return False
    if not (
        request.api_group == "*" or "*" in rule.api_groups or request.api_group in rule.api_groups
    ):
        return False
    wanted = request.resource_with_subresource
    if request.resource != "*" and request.subresource != "*":
        if not any(
            glob_match(pattern, wanted) or glob_match(wanted, pattern) for pattern in rule.resources
        ):
            return False
    if rule.namespaces and not any(glob_match(n, request.namespace) for n in rule.namespaces):
        return False
    return not (rule.resource_names and request.name and request.name not in rule.resource_names)


def access_decision(policy: Policy, request: KubeRequest) -> dict[str, Any]:
    """The review's ``status`` for ``request`` under ``policy``."""
    if not request.is_resource_request and request.verb == "get" and is_discovery(request):
        return {"allowed": True, "reason": "eksgate: API discovery is open to every session"}
    decision = evaluate(policy, request)
    if decision.effect == "deny":
        return {"allowed": False, "denied": True, "reason": f"eksgate: {decision.reason}"}
    if decision.effect == "approve":
        approvers = ", ".join(decision.rule.approvers) if decision.rule else ""
        return {
            "allowed": False,
            "reason": f"eksgate: approval required: {decision.reason}"
            + (f" (approvers: {approvers})" if approvers else "")
            + "; make the request and it waits for a human in Slack",
        }
    # Allowed for the request as asked; a wildcard or nameless question also covers requests
    # that stricter rules decide, and must say so.
    winner = decision.rule
    stricter = [
        rule
        for rule in policy.rules
        if rule is not winner
        and rule.effect in ("deny", "approve")
        and _could_cover_part(rule, request)
    ]
    if stricter and _is_wildcard(request):
        labels = ", ".join(f"{r.label} ({r.effect})" for r in stricter)
        return {
            "allowed": False,
            "reason": f"eksgate: not for every request {describe_request(request)} covers: "
            f"rules {labels} of policy {policy.name!r} decide some of them",
        }
    reason = f"eksgate: {decision.reason}"
    if stricter:
        labels = ", ".join(
            f"{r.label} ({r.effect}: {', '.join(r.resource_names)})" for r in stricter
        )
        reason += f"; except names that rules {labels} decide"
    return {"allowed": True, "reason": reason}


def access_review(policy: Policy, review: Any) -> dict[str, Any]:
    """The SelfSubjectAccessReview ``review``, answered from ``policy``."""
    request = review_request(review)
    return {
        "kind": "SelfSubjectAccessReview",
        "apiVersion": review.get("apiVersion", API_VERSION),
        "metadata": {"creationTimestamp": None},
        "spec": review["spec"],
        "status": access_decision(policy, request),
    }


def _applies_to_namespace(rule: Rule, namespace: str) -> bool:
    return not rule.namespaces or any(glob_match(n, namespace) for n in rule.namespaces)


def rules_review(policy: Policy, review: Any) -> dict[str, Any]:
    """The SelfSubjectRulesReview ``review``: what ``policy`` allows outright in a namespace."""
    spec = _review_spec(review, "SelfSubjectRulesReview")
    namespace = spec.get("namespace", "")
    if not isinstance(namespace, str):
        raise BadRequest("spec.namespace must be a string")
    resource_rules: list[dict[str, Any]] = []
    non_resource_rules = [{"verbs": ["get"], "nonResourceURLs": list(DISCOVERY_NON_RESOURCE_URLS)}]
    withheld = []
    for rule in policy.rules:
        if rule.resources and not _applies_to_namespace(rule, namespace):
            continue
        if rule.effect != "allow":
            withheld.append(
                f"{rule.label} ({'needs approval' if rule.effect == 'approve' else 'denies'})"
            )
            continue
        if rule.commands:
            # Only some commands are allowed: a rules list would say every command is.
            withheld.append(f"{rule.label} (allows only the commands it names)")
            continue
        if rule.non_resource_urls:
            non_resource_rules.append(
                {"verbs": list(rule.verbs), "nonResourceURLs": list(rule.non_resource_urls)}
            )
        if rule.resources:
            entry: dict[str, Any] = {
                "verbs": list(rule.verbs),
                "apiGroups": list(rule.api_groups),
                "resources": list(rule.resources),
            }
            if rule.resource_names:
                entry["resourceNames"] = list(rule.resource_names)
            resource_rules.append(entry)
    status: dict[str, Any] = {
        "resourceRules": resource_rules,
        "nonResourceRules": non_resource_rules,
        "incomplete": bool(withheld),
    }
    if withheld:
        status["evaluationError"] = (
            f"eksgate policy {policy.name!r}: these rules are not listed because a rules list "
            f"cannot express them, and deny beats allow: {', '.join(withheld)}; ask "
            "`kubectl auth can-i VERB RESOURCE` for a given request"
        )
    return {
        "kind": "SelfSubjectRulesReview",
        "apiVersion": review.get("apiVersion", API_VERSION),
        "metadata": {"creationTimestamp": None},
        "spec": dict(spec),
        "status": status,
    }


SELF_REVIEWS = {
    "selfsubjectaccessreviews": access_review,
    "selfsubjectrulesreviews": rules_review,
}


def is_self_review(request: KubeRequest) -> bool:
    """Is ``request`` a caller asking about its own permissions (``kubectl auth can-i``)?

    The gateway answers these from the policy instead of forwarding them: the cluster would
    answer for the policy's role, which is broader than what the gateway lets through.
    """
    return (
        request.is_resource_request
        and request.verb == "create"
        and request.api_group == "authorization.k8s.io"
        and request.resource in SELF_REVIEWS
        and not request.subresource
        and not request.name
    )


def answer_self_review(
    policy: Policy, request: KubeRequest, body: bytes, content_type: str
) -> dict[str, Any]:
    """The 201 answer (JSON) to a self review, JSON or protobuf; BadRequest if malformed."""
    from chalicelib.permissions.review_body import parse_review

    review = parse_review(body, content_type)
    expected = {
        "selfsubjectaccessreviews": "SelfSubjectAccessReview",
        "selfsubjectrulesreviews": "SelfSubjectRulesReview",
    }[request.resource]
    if review.get("kind") != expected:
        raise BadRequest(f"{request.resource} takes a {expected}")
    return SELF_REVIEWS[request.resource](policy, review)
