"""The kind of the objects a request asks for, from its resolved resource.

Only the kinds masking treats specially are named; for any other resource the objects'
own ``kind`` decides ("" here), and metadata-only reads of them fail closed.
"""

from __future__ import annotations

# (API group, resource) -> kind. Secrets of any group are Secrets: a custom resource that
# chose the name gets the strictest masking rather than none.
_KINDS = {
    ("", "configmaps"): "ConfigMap",
    ("authentication.k8s.io", "tokenreviews"): "TokenReview",
}


def kind_for_resource(api_group: str, resource: str, subresource: str = "") -> str:
    """``kind_for_resource("", "secrets")`` is ``"Secret"``; "" when masking has no rule."""
    if resource == "secrets":
        return "Secret"
    if subresource:
        return "TokenRequest" if (resource, subresource) == ("serviceaccounts", "token") else ""
    return _KINDS.get((api_group, resource), "")
