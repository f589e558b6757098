"""Permissions an agent can ask about: whoami summaries and can-i answered from the policy."""

from __future__ import annotations

import json

import pytest

from chalicelib.config import DEFAULT_POLICY_DIR
from chalicelib.credentials.session_token import GatewaySession
from chalicelib.errors import BadRequest
from chalicelib.identity import Identity
from chalicelib.permissions.access_review import access_review, review_request, rules_review
from chalicelib.permissions.whoami import whoami, whoami_text
from chalicelib.policy import load_policy_text

CI_AGENT = load_policy_text((DEFAULT_POLICY_DIR / "ci-agent.yaml").read_text())[0]

NAMED = load_policy_text(
    """
name: named
subjects: [{issuer: https://i, claims: {sub: agent}}]
clusters: [demo]
role: arn:aws:iam::123456789012:role/named
rules:
  - name: all-pods
    effect: allow
    verbs: [get, list, delete]
    resources: [pods]
  - name: keep-db
    effect: deny
    reason: the database pod is precious
    verbs: [delete]
    resources: [pods]
    resourceNames: [db-0]
  - name: everything-read
    effect: allow
    verbs: ["*"]
    apiGroups: ["*"]
    resources: ["*"]
    namespaces: [sandbox]
"""
)[0]


def ssar(namespace="", verb="get", group="", resource="pods", name="", subresource=""):
    return {
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "spec": {
            "resourceAttributes": {
                "namespace": namespace,
                "verb": verb,
                "group": group,
                "resource": resource,
                "name": name,
                "subresource": subresource,
            }
        },
    }


def test_can_i_delete_namespaces_is_denied_with_the_rule_and_its_reason():
    status = access_review(CI_AGENT, ssar(verb="delete", resource="namespaces"))["status"]
    assert status["allowed"] is False and status["denied"] is True
    assert "no-namespace-deletes" in status["reason"]
    assert "namespaces are managed by the platform team" in status["reason"]


def test_can_i_patch_deployments_needs_approval_and_says_so():
    status = access_review(CI_AGENT, ssar("shop", "patch", "apps", "deployments"))["status"]
    assert status["allowed"] is False and "denied" not in status
    assert "approval required" in status["reason"] and "change-deployments" in status["reason"]
    assert "slack-group:platform-oncall" in status["reason"]


def test_can_i_read_pods_in_shop_is_allowed_but_not_elsewhere():
    assert access_review(CI_AGENT, ssar("shop", "list"))["status"]["allowed"] is True
    elsewhere = access_review(CI_AGENT, ssar("kube-system", "list"))["status"]
    assert elsewhere["allowed"] is False and elsewhere["denied"] is True
    assert "no rule" in elsewhere["reason"]
    all_namespaces = access_review(CI_AGENT, ssar("", "list"))["status"]
    assert all_namespaces["allowed"] is False  # the gateway decides GET /api/v1/pods the same way


def test_subresources_are_asked_about_as_the_gateway_resolves_them():
    logs = access_review(CI_AGENT, ssar("shop", "get", resource="pods", subresource="log"))
    assert logs["status"]["allowed"] is True
    exec_ = access_review(CI_AGENT, ssar("shop", "create", resource="pods", subresource="exec"))
    assert exec_["status"]["allowed"] is False


def test_a_wildcard_question_is_not_allowed_when_a_stricter_rule_covers_part_of_it():
    """An attacker-friendly answer would be "yes" because one allow rule has verbs ["*"]."""
    status = access_review(NAMED, ssar("sandbox", "*", "*", "*"))["status"]
    assert status["allowed"] is False and "keep-db" in status["reason"]
    assert access_review(NAMED, ssar("sandbox", "*", "", "services"))["status"]["allowed"] is True


def test_a_nameless_question_names_the_exceptions():
    status = access_review(NAMED, ssar("prod", "delete"))["status"]
    assert status["allowed"] is True and "db-0" in status["reason"]
    named = access_review(NAMED, ssar("prod", "delete", name="db-0"))["status"]
    assert named["allowed"] is False and named["denied"] is True
    assert "the database pod is precious" in named["reason"]


def test_discovery_is_allowed_and_other_non_resource_paths_follow_the_policy():
    review = {
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "spec": {"nonResourceAttributes": {"path": "/apis", "verb": "get"}},
    }
    assert access_review(CI_AGENT, review)["status"]["allowed"] is True
    review["spec"]["nonResourceAttributes"]["path"] = "/metrics"
    assert access_review(CI_AGENT, review)["status"]["allowed"] is False


@pytest.mark.parametrize(
    "review",
    [
        None,
        [],
        {"kind": "SelfSubjectRulesReview", "apiVersion": "authorization.k8s.io/v1", "spec": {}},
        {"kind": "SelfSubjectAccessReview", "apiVersion": "v1", "spec": {}},
        {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1", "spec": {}},
        {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "spec": {
                "resourceAttributes": {"verb": "get", "resource": "pods"},
                "nonResourceAttributes": {"path": "/x", "verb": "get"},
            },
        },
        {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "spec": {"resourceAttributes": {"verb": ["get"], "resource": "pods"}},
        },
        {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "spec": {"resourceAttributes": {"verb": "get"}},
        },
        {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "spec": {"nonResourceAttributes": {"path": "metrics", "verb": "get"}},
        },
    ],
)
def test_malformed_reviews_are_bad_requests(review):
    with pytest.raises(BadRequest):
        review_request(review)


def test_rules_review_lists_what_is_allowed_outright_and_says_it_is_incomplete():
    review = {
        "kind": "SelfSubjectRulesReview",
        "apiVersion": "authorization.k8s.io/v1",
        "spec": {"namespace": "shop"},
    }
    status = rules_review(CI_AGENT, review)["status"]
    assert [r["resources"] for r in status["resourceRules"]] == [
        [
            "pods",
            "pods/log",
            "deployments",
            "replicasets",
            "services",
            "configmaps",
            "secrets",
            "events",
        ]
    ]
    assert status["incomplete"] is True
    assert "change-deployments (needs approval)" in status["evaluationError"]
    assert "no-namespace-deletes (denies)" in status["evaluationError"]
    other = rules_review(CI_AGENT, {**review, "spec": {"namespace": "kube-system"}})["status"]
    assert other["resourceRules"] == []
    assert any("/apis" in r["nonResourceURLs"] for r in other["nonResourceRules"])


def session(email=None, claimed=None) -> GatewaySession:
    identity = Identity(
        subject="repo:acme/shop:environment:production",
        issuer="https://token.actions.githubusercontent.com",
        email=email,
        groups=("ci",),
        claims={"repository": "acme/shop"},
        claimed_email=claimed,
    )
    return GatewaySession(
        "sid-1",
        "demo",
        "ci-agent",
        identity,
        1000,
        1900,
        {"repository": "acme/shop", "environment": "production"},
    )


def test_whoami_summarises_identity_session_and_rules_by_effect():
    answer = whoami(session(claimed="bot@example.com"), CI_AGENT, now=1300)
    json.dumps(answer)  # JSON-able
    assert answer["identity"]["email"] == {"address": "bot@example.com", "verified": False}
    assert answer["identity"]["issuer"] == "https://token.actions.githubusercontent.com"
    assert answer["session"] == {
        "id": "sid-1",
        "issued_at": "1970-01-01T00:16:40Z",
        "expires_at": "1970-01-01T00:31:40Z",
        "expires_in_seconds": 600,
    }
    assert answer["policy"]["name"] == "ci-agent" and answer["cluster"] == "demo"
    rules = answer["rules"]
    assert [r["rule"] for r in rules["allowed"]] == ["read-shop", "read-app-config"]
    assert [r["rule"] for r in rules["needs_approval"]] == ["change-deployments", "run-scripts"]
    assert [r["rule"] for r in rules["denied"]] == ["no-namespace-deletes", "no-rbac"]
    approval = rules["needs_approval"][0]["approval"]
    assert approval["mode"] == "once" and approval["approvers"] == ["slack-group:platform-oncall"]
    assert rules["denied"][0]["reason"] == "namespaces are managed by the platform team"


def test_whoami_marks_a_verified_email_and_refuses_a_foreign_policy():
    answer = whoami(session(email="bot@example.com"), CI_AGENT, now=0)
    assert answer["identity"]["email"] == {"address": "bot@example.com", "verified": True}
    with pytest.raises(ValueError):
        whoami(session(), NAMED)


def test_whoami_text_reads_as_the_policy_does():
    text = whoami_text(whoami(session(claimed="bot@example.com"), CI_AGENT, now=1300))
    assert "bot@example.com> (unverified)" in text
    assert (
        "needs a human's approval:\n  - create,update,patch deployments,deployments/scale" in text
    )
    assert "[no-namespace-deletes]" in text and "namespaces are managed" in text


# ---- the bodies kubectl sends (captured from kubectl 1.33 and 1.31) ------------------------

from pathlib import Path  # noqa: E402

from chalicelib.kube.request import resolve  # noqa: E402
from chalicelib.permissions.access_review import answer_self_review, is_self_review  # noqa: E402
from chalicelib.permissions.review_body import parse_review  # noqa: E402

CAPTURED = {
    item["name"]: item
    for item in json.loads(
        (Path(__file__).parent / "fixtures" / "kubectl_access_reviews.json").read_text()
    )
}


def captured(name: str) -> tuple[bytes, str, str]:
    import base64

    item = CAPTURED[name]
    return base64.b64decode(item["body"]), item["ct"], item["path"]


@pytest.mark.parametrize(
    "name",
    [
        "kubectl-1.33-can-i-patch-deployments.apps-n-shop",
        "kubectl-1.31-can-i-patch-deployments.apps-n-shop",
    ],
)
def test_kubectl_can_i_in_protobuf_or_json_needs_approval_for_a_deployment_patch(name):
    body, content_type, path = captured(name)
    request = resolve("POST", path)
    assert is_self_review(request)
    answer = answer_self_review(CI_AGENT, request, body, content_type)
    assert answer["spec"]["resourceAttributes"]["resource"] == "deployments"
    assert (
        answer["status"]["allowed"] is False and "approval required" in answer["status"]["reason"]
    )


def test_kubectl_protobuf_reviews_decode_to_their_json_form():
    body, content_type, _ = captured("kubectl-1.33-can-i-get-metrics")
    assert parse_review(body, content_type) == {
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "spec": {"nonResourceAttributes": {"path": "/metrics", "verb": "get"}},
    }
    body, content_type, _ = captured("kubectl-1.33-can-i-star-star")
    attributes = parse_review(body, content_type)["spec"]["resourceAttributes"]
    assert attributes["verb"] == "*" and attributes["resource"] == "*"
    assert attributes["namespace"] == "default"
    body, content_type, path = captured("kubectl-1.33-can-i-list-n-shop")
    answer = answer_self_review(CI_AGENT, resolve("POST", path), body, content_type)
    assert answer["kind"] == "SelfSubjectRulesReview" and answer["spec"] == {"namespace": "shop"}
    assert answer["status"]["incomplete"] is True


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"k8s",
        b"not-k8s\x00\n\x02",
        b"k8s\x00\n\xff\xff\xff\xff\x0f",  # a length far past the end
        b"k8s\x00\x0f",  # wire type 7 does not exist
        b"k8s\x00\n\x05\n\x03abc",  # a TypeMeta, then nothing: not a review
        b"k8s\x00\n\x04\x12\x02\xff\xfe",  # a kind that is not UTF-8
    ],
)
def test_malformed_protobuf_reviews_are_bad_requests(body):
    with pytest.raises(BadRequest):
        parse_review(body, "application/vnd.kubernetes.protobuf")


def test_a_review_of_the_other_kind_or_media_is_refused():
    body, content_type, _ = captured("kubectl-1.33-can-i-get-metrics")
    rules = resolve("POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews")
    with pytest.raises(BadRequest):
        answer_self_review(CI_AGENT, rules, body, content_type)
    with pytest.raises(BadRequest):
        parse_review(b"kind: x", "application/yaml")
    assert not is_self_review(resolve("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews"))
    assert not is_self_review(
        resolve("GET", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
    )


from chalicelib.permissions.whoami import identity_review, is_identity_review  # noqa: E402


@pytest.mark.parametrize("version", ["v1", "v1beta1", "v1alpha1"])
def test_kubectl_auth_whoami_is_answered_with_the_verified_caller(version):
    request = resolve("POST", f"/apis/authentication.k8s.io/{version}/selfsubjectreviews")
    assert is_identity_review(request)
    answer = identity_review(session(), version)
    assert answer["apiVersion"] == f"authentication.k8s.io/{version}"
    user = answer["status"]["userInfo"]
    assert user["username"] == session().identity.subject
    assert user["extra"]["eksgate.io/policy"] == ["ci-agent"]
    assert user["extra"]["eksgate.io/session"] == [session().session_id]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/apis/authentication.k8s.io/v1/selfsubjectreviews"),
        ("POST", "/apis/authentication.k8s.io/v1/tokenreviews"),
        ("POST", "/apis/authentication.k8s.io/v9/selfsubjectreviews"),
        ("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews/x"),
        ("POST", "/apis/authorization.k8s.io/v1/selfsubjectreviews"),
    ],
)
def test_only_a_self_subject_review_is_answered_by_the_gateway(method, path):
    assert not is_identity_review(resolve(method, path))  # the rest is decided by policy
