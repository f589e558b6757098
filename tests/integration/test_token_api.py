"""POST /v1/token through the app's Lambda handler, served on loopback, against moto."""

from __future__ import annotations

import base64
import json
import logging
import time
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import urllib3
from eksgate_local.gateway_server import LocalApiGateway

import app as app_module
from chalicelib.credentials.eks_token import decode_eks_token
from chalicelib.services import build_services


@pytest.fixture()
def gateway(settings, aws):
    app_module._services = build_services(settings, aws)
    with LocalApiGateway(app_module.app) as server:
        yield server
    app_module._services = None


def post_token(gateway, token, body=None, raw=None, content_type="application/json"):
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else json.dumps(body or {"cluster": "demo"}).encode()
    # A fresh pool per call: a kept-alive connection must never outlive its test's gateway.
    response = urllib3.PoolManager().request(
        "POST", f"{gateway.url}/v1/token", body=data, headers=headers
    )
    return response.status, json.loads(response.data)


def test_gateway_mode_returns_exec_credential_bound_to_session(gateway, oidc_issuer):
    status, body = post_token(gateway, oidc_issuer.mint("ci-agent"))
    assert status == 200
    assert body["apiVersion"] == "client.authentication.k8s.io/v1beta1"
    assert body["kind"] == "ExecCredential"
    claims = jwt.decode(body["status"]["token"], options={"verify_signature": False})
    assert claims["cls"] == "demo" and claims["pol"] == "ci-agent"
    assert claims["sub"] == "repo:acme/shop:environment:production"
    assert claims["clm"] == {"repository": "acme/shop", "environment": "production"}
    lifetime = claims["exp"] - claims["iat"]
    assert 0 < lifetime <= 900
    expires = datetime.strptime(body["status"]["expirationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
    assert expires.replace(tzinfo=UTC).timestamp() == claims["exp"]
    assert jwt.get_unverified_header(body["status"]["token"])["kid"]


def test_each_token_opens_a_new_session(gateway, oidc_issuer):
    sids = {
        jwt.decode(
            post_token(gateway, oidc_issuer.mint("ci-agent"))[1]["status"]["token"],
            options={"verify_signature": False},
        )["sid"]
        for _ in range(2)
    }
    assert len(sids) == 2


def test_v1_exec_credential_on_request(gateway, oidc_issuer):
    status, body = post_token(
        gateway,
        oidc_issuer.mint("ci-agent"),
        {"cluster": "demo", "apiVersion": "client.authentication.k8s.io/v1"},
    )
    assert status == 200 and body["apiVersion"] == "client.authentication.k8s.io/v1"


def test_session_expiry_follows_the_policy_maximum(gateway, oidc_issuer):
    # readonly-direct has max_session: 10m
    status, body = post_token(gateway, oidc_issuer.mint({"sub": "service:dashboard-1"}))
    claims = jwt.decode(body["status"]["token"], options={"verify_signature": False})
    assert status == 200 and claims["exp"] - claims["iat"] == 600


def test_no_policy_gives_403_naming_identity_and_cluster(gateway, oidc_issuer):
    status, body = post_token(gateway, oidc_issuer.mint({"sub": "user:nobody"}))
    assert status == 403
    assert "user:nobody" in body["message"] and "'demo'" in body["message"]


def test_unknown_cluster_gives_404(gateway, oidc_issuer):
    status, body = post_token(gateway, oidc_issuer.mint("ci-agent"), {"cluster": "staging"})
    assert status == 404 and "staging" in body["message"]


@pytest.mark.parametrize(
    "raw, fragment",
    [
        (b"", "empty"),
        (b"{nope", "not JSON"),
        (b"[1]", "JSON object"),
        (b'{"mode": "gateway"}', "'cluster' is required"),
        (b'{"cluster": "demo", "mode": "x"}', "mode"),
        (b'{"cluster": "demo", "extra": 1}', "unknown field"),
        (b'{"cluster": "demo", "apiVersion": "v0"}', "apiVersion"),
    ],
)
def test_bad_bodies_get_400_with_a_reason(gateway, oidc_issuer, raw, fragment):
    status, body = post_token(gateway, oidc_issuer.mint("ci-agent"), raw=raw)
    assert status == 400 and fragment in body["message"]


def test_oversized_body_gets_413(gateway, oidc_issuer):
    raw = json.dumps({"cluster": "demo", "mode": "gateway" + " " * 2_000_000}).encode()
    status, body = post_token(gateway, oidc_issuer.mint("ci-agent"), raw=raw)
    assert status == 413 and body["code"] == "RequestEntityTooLarge"


@pytest.mark.parametrize(
    "make_token, fragment",
    [
        (lambda i: None, "missing OIDC token"),
        (lambda i: "garbage", "well-formed"),
        (
            lambda i: i.mint(
                "ci-agent",
                exp=int(time.time()) - 100,
                iat=int(time.time()) - 900,
                nbf=int(time.time()) - 900,
            ),
            "expired",
        ),
        (lambda i: i.mint("ci-agent", nbf=int(time.time()) + 900), "not valid yet"),
        (lambda i: i.mint("ci-agent", audience="other"), "audience"),
        (lambda i: i.mint("ci-agent", iss="https://evil.example"), "not trusted"),
        (lambda i: i.mint("ci-agent", padding="x" * 20000), "larger than"),
    ],
)
def test_bad_oidc_tokens_get_401_and_are_never_logged(
    gateway, oidc_issuer, app_log, make_token, fragment
):
    token = make_token(oidc_issuer)
    status, body = post_token(gateway, token)
    assert status == 401 and fragment in body["message"]
    logs = app_log.getvalue()
    assert '"message":"token refused"' in logs and '"TokensRefused"' in logs
    assert token is None or token not in logs


def test_alg_none_token_gets_401(gateway):
    header = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
    body = (
        base64.urlsafe_b64encode(
            json.dumps(
                {
                    "iss": "https://oidc.eksgate.local",
                    "aud": "eksgate",
                    "sub": "x",
                    "exp": int(time.time()) + 60,
                    "iat": int(time.time()),
                }
            ).encode()
        )
        .rstrip(b"=")
        .decode()
    )
    status, answer = post_token(gateway, f"{header}.{body}.")
    assert status == 401 and "'none'" in answer["message"]


def test_issued_tokens_are_not_logged(gateway, oidc_issuer, app_log):
    oidc = oidc_issuer.mint("ci-agent")
    status, body = post_token(gateway, oidc)
    logs = app_log.getvalue()
    assert status == 200
    assert oidc not in logs and body["status"]["token"] not in logs
    assert '"message":"token issued"' in logs and '"TokensIssued"' in logs
    assert '"correlation_id"' in logs and '"subject":"repo:acme/shop' in logs


def test_direct_mode_is_refused_where_the_policy_does_not_allow_it(gateway, oidc_issuer):
    status, body = post_token(
        gateway, oidc_issuer.mint("ci-agent"), {"cluster": "demo", "mode": "direct"}
    )
    assert status == 403 and "does not allow direct mode" in body["message"]


ALLOWED_QUERY = {
    "Action",
    "Version",
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Security-Token",
    "X-Amz-Signature",
}


def test_direct_mode_token_is_what_aws_iam_authenticator_accepts(gateway, oidc_issuer):
    status, body = post_token(
        gateway,
        oidc_issuer.mint({"sub": "service:dashboard-1"}),
        {"cluster": "demo", "mode": "direct"},
    )
    assert status == 200
    token = body["status"]["token"]
    assert token.startswith("k8s-aws-v1.") and "=" not in token
    url = decode_eks_token(token)
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert parts.scheme == "https" and parts.hostname == "sts.us-east-1.amazonaws.com"
    assert parts.path == "/"
    assert set(query) <= ALLOWED_QUERY
    assert query["Action"] == ["GetCallerIdentity"]
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"][0].split(";")
    assert int(query["X-Amz-Expires"][0]) <= 900
    assert len(url) <= 4096
    assert query["X-Amz-Security-Token"]  # assumed-role (temporary) credentials


def test_direct_mode_assumes_the_role_with_source_identity_and_tags(settings, aws, oidc_issuer):
    from chalicelib.credentials.broker import TokenRequest

    services = build_services(settings, aws)
    identity = services.verifier.verify(oidc_issuer.mint({"sub": "service:dashboard-1"}))
    calls = []
    real_assume = services.role_credentials._sts.assume_role

    def spy(**kwargs):
        calls.append(kwargs)
        return real_assume(**kwargs)

    services.role_credentials._sts.assume_role = spy
    issued = services.broker.issue(identity, TokenRequest("demo", "direct"))
    services.broker.issue(identity, TokenRequest("demo", "direct"))
    assert len(calls) == 1, "a warm process reuses assumed-role credentials"
    call = calls[0]
    assert call["RoleArn"] == "arn:aws:iam::123456789012:role/eksgate-readonly"
    assert call["DurationSeconds"] == 900
    assert call["SourceIdentity"] == "service-dashboard-1"
    assert len(call["RoleSessionName"]) <= 64
    assert {t["Key"] for t in call["Tags"]} >= {"eksgate-subject", "eksgate-policy"}
    assert issued.source_identity == "service-dashboard-1"


def test_missing_signing_key_fails_closed_with_503(oidc_issuer, aws, tmp_path):
    from chalicelib.config import DEFAULT_POLICY_DIR, load_settings
    from tests.conftest import app_environment

    settings = load_settings(app_environment(oidc_issuer, DEFAULT_POLICY_DIR))
    app_module._services = build_services(settings, aws)  # no secret was created
    try:
        with LocalApiGateway(app_module.app) as server:
            status, body = post_token(server, oidc_issuer.mint("ci-agent"))
    finally:
        app_module._services = None
    assert status == 503 and "signing key" in body["message"]


def test_broken_policies_fail_closed(oidc_issuer, signing_secret, tmp_path):
    from chalicelib.config import load_settings
    from chalicelib.errors import ServiceUnavailable
    from tests.conftest import app_environment

    (tmp_path / "bad.yaml").write_text("name: Bad Name\n")
    with pytest.raises(ServiceUnavailable):
        build_services(load_settings(app_environment(oidc_issuer, tmp_path)))


def test_the_app_does_not_silence_its_own_logger():
    from chalicelib.observability import logger

    assert app_module.app.log.name == logger.name  # both use the "eksgate" logger...
    assert logging.getLogger(logger.name).getEffectiveLevel() <= logging.INFO  # ...at INFO
