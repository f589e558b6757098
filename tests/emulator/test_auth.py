"""Authentication (static tokens, EKS tokens against moto's STS) and call recording."""

from __future__ import annotations

import base64
import logging
import urllib.parse
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
from eksgate_local.kube_emulator import (
    EksTokenAuthenticator,
    EksTokenError,
    KubeEmulator,
    StaticTokenAuthenticator,
    parse_eks_token,
)
from kubernetes import client
from kubernetes.client import ApiException
from moto.server import ThreadedMotoServer

from chalicelib.credentials.eks_token import (
    TOKEN_PREFIX,
    AwsCredentials,
    decode_eks_token,
    make_eks_token,
)

from .conftest import OTHER_PRINCIPAL, OTHER_TOKEN, PRINCIPAL, TOKEN, make_api_client, raw_request

CLUSTER = "eksgate-demo"
REGION = "eu-west-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/eksgate-readonly"
SESSION = "alice@example.com"
ASSUMED_ARN = f"arn:aws:sts::123456789012:assumed-role/eksgate-readonly/{SESSION}"


# ----- static tokens and call records -------------------------------------------------------


def test_missing_or_wrong_token_is_401(emulator: KubeEmulator, ca_file: Path) -> None:
    for token in ("wrong-token", ""):
        with make_api_client(emulator, ca_file, token=token) as api:
            with pytest.raises(ApiException) as err:
                client.CoreV1Api(api).list_namespaced_pod("shop")
        assert err.value.status == 401
        assert '"reason":"Unauthorized"' in err.value.body
    basic = client.Configuration(host=emulator.url, api_key={"authorization": f"Basic {TOKEN}"})
    basic.ssl_ca_cert = str(ca_file)
    with client.ApiClient(basic) as api:
        with pytest.raises(ApiException) as err:
            client.VersionApi(api).get_code()
    assert err.value.status == 401


def test_calls_record_the_principal(
    emulator: KubeEmulator, ca_file: Path, api_client: client.ApiClient
) -> None:
    emulator.clear_calls()
    assert emulator.calls == []
    client.CoreV1Api(api_client).read_namespaced_secret("db-credentials", "shop")
    with make_api_client(emulator, ca_file, token=OTHER_TOKEN) as other:
        client.AppsV1Api(other).patch_namespaced_deployment(
            "web", "shop", {"spec": {"replicas": 2}}, dry_run="All"
        )
    with make_api_client(emulator, ca_file, token="nope") as anonymous:
        with pytest.raises(ApiException):
            client.CoreV1Api(anonymous).list_namespace()
    calls = emulator.calls
    assert [(c.principal, c.verb, c.resource, c.status) for c in calls] == [
        (PRINCIPAL, "get", "secrets", 200),
        (OTHER_PRINCIPAL, "patch", "deployments", 200),
        (None, "get", None, 401),
    ]
    secret_call, patch_call, _ = calls
    assert (
        secret_call.method == "GET"
        and secret_call.path == "/api/v1/namespaces/shop/secrets/db-credentials"
    )
    assert (
        secret_call.namespace == "shop"
        and secret_call.name == "db-credentials"
        and secret_call.group == ""
    )
    assert patch_call.group == "apps" and patch_call.dry_run is True
    assert patch_call.query["dryRun"] == ["All"]
    assert secret_call.user_agent  # the client's User-Agent is kept for debugging


def test_record_verbs(emulator: KubeEmulator, api_client: client.ApiClient) -> None:
    emulator.clear_calls()
    core = client.CoreV1Api(api_client)
    core.list_namespaced_pod("shop", limit=1)
    raw_request(
        api_client,
        "GET",
        "/api/v1/namespaces/shop/pods",
        query=[("watch", "1"), ("timeoutSeconds", "0.2")],
    )
    core.create_namespaced_service_account_token(
        "deployer",
        "shop",
        client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=["x"])),
    )
    pod = core.list_namespaced_pod("shop", label_selector="app=web").items[0].metadata.name
    core.read_namespaced_pod_log(pod, "shop", tail_lines=1)
    verbs = [(c.verb, c.resource, c.subresource) for c in emulator.calls]
    assert verbs == [
        ("list", "pods", None),
        ("watch", "pods", None),
        ("create", "serviceaccounts", "token"),
        ("list", "pods", None),
        ("get", "pods", "log"),
    ]


def test_static_authenticator_add_remove() -> None:
    auth = StaticTokenAuthenticator({"a": "alice"})
    assert auth("a") == "alice" and auth("b") is None
    auth.add("b", "bob")
    assert auth("b") == "bob"
    auth.remove("a")
    assert auth("a") is None
    assert "alice" not in repr(auth) and "a" != repr(auth)


# ----- EKS tokens against moto's STS ------------------------------------------------------------


@pytest.fixture(scope="module")
def sts_url() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def role_credentials(sts_url: str) -> AwsCredentials:
    sts = boto3.client(
        "sts",
        endpoint_url=sts_url,
        region_name=REGION,
        aws_access_key_id="AKIAIOSFODNN7EXAMPLE",
        aws_secret_access_key="not-used-by-moto",
    )
    creds = sts.assume_role(RoleArn=ROLE_ARN, RoleSessionName=SESSION)["Credentials"]
    return AwsCredentials(
        creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"], creds["Expiration"]
    )


@pytest.fixture(scope="module")
def eks_emulator(sts_url: str) -> Iterator[KubeEmulator]:
    with KubeEmulator(authenticate=EksTokenAuthenticator(sts_url, CLUSTER), seed=True) as emu:
        yield emu


def test_eks_token_resolves_assumed_role(
    eks_emulator: KubeEmulator, role_credentials: AwsCredentials, tmp_path: Path
) -> None:
    token = make_eks_token(role_credentials, CLUSTER, REGION).token
    ca = tmp_path / "ca.crt"
    ca.write_bytes(eks_emulator.ca_pem)
    eks_emulator.clear_calls()
    with make_api_client(eks_emulator, ca, token=token) as api:
        pods = client.CoreV1Api(api).list_namespaced_pod("shop")
        assert pods.items
        who = client.AuthenticationV1Api(api).create_self_subject_review(
            client.V1SelfSubjectReview()
        )
    assert who.status.user_info.username == ASSUMED_ARN
    assert [c.principal for c in eks_emulator.calls] == [ASSUMED_ARN, ASSUMED_ARN]


def test_eks_token_for_another_cluster_fails(
    eks_emulator: KubeEmulator, role_credentials: AwsCredentials, sts_url: str, tmp_path: Path
) -> None:
    token = make_eks_token(role_credentials, "some-other-cluster", REGION).token
    ca = tmp_path / "ca.crt"
    ca.write_bytes(eks_emulator.ca_pem)
    with make_api_client(eks_emulator, ca, token=token) as api:
        with pytest.raises(ApiException) as err:
            client.CoreV1Api(api).list_namespaced_pod("shop")
    assert err.value.status == 401
    with pytest.raises(EksTokenError, match="not signed for this cluster"):
        EksTokenAuthenticator(sts_url, CLUSTER).resolve(token)
    # The documented limit: without signature checking moto cannot tell clusters apart.
    assert (
        EksTokenAuthenticator(sts_url, CLUSTER, verify_signature=False).resolve(token)
        == ASSUMED_ARN
    )


def test_eks_token_unknown_credentials_fail(sts_url: str, role_credentials: AwsCredentials) -> None:
    forged = AwsCredentials(
        "ASIAFORGEDFORGED0000", "secret", "session", role_credentials.expiration
    )
    token = make_eks_token(forged, CLUSTER, REGION).token
    with pytest.raises(EksTokenError, match="unknown access key"):
        EksTokenAuthenticator(sts_url, CLUSTER).resolve(token)
    with pytest.raises(EksTokenError, match="does not know"):
        EksTokenAuthenticator(sts_url, CLUSTER, verify_signature=False).resolve(token)
    # A real key with a forged signature.
    genuine = make_eks_token(role_credentials, CLUSTER, REGION).token
    url = decode_eks_token(genuine)
    sig = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["X-Amz-Signature"][0]
    tampered = _token(url.replace(sig, "0" * 64))
    with pytest.raises(EksTokenError, match="signature mismatch"):
        EksTokenAuthenticator(sts_url, CLUSTER).resolve(tampered)


def test_eks_token_resolution_is_cached(
    sts_url: str, role_credentials: AwsCredentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = EksTokenAuthenticator(sts_url, CLUSTER)
    token = make_eks_token(role_credentials, CLUSTER, REGION).token
    assert auth(token) == ASSUMED_ARN
    monkeypatch.setattr(auth, "_replay", lambda presigned: pytest.fail("cache miss"))
    assert auth(token) == ASSUMED_ARN
    assert auth("k8s-aws-v1.garbage") is None


def _token(url: str) -> str:
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")


def _url(role_credentials: AwsCredentials) -> str:
    return decode_eks_token(make_eks_token(role_credentials, CLUSTER, REGION).token)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda u: u.replace("https://", "http://"), "not https"),
        (
            lambda u: u.replace(
                "sts.eu-west-1.amazonaws.com", "sts.eu-west-1.amazonaws.com.evil.example"
            ),
            "unexpected STS host",
        ),
        (
            lambda u: u.replace("sts.eu-west-1.amazonaws.com", "sts.eu-west-1.amazonaws.com:8443"),
            "port",
        ),
        (
            lambda u: u.replace(
                "sts.eu-west-1.amazonaws.com", "attacker@sts.eu-west-1.amazonaws.com"
            ),
            "userinfo",
        ),
        (
            lambda u: u.replace("sts.eu-west-1.amazonaws.com", "sts.us-east-1.amazonaws.com"),
            "credential scope",
        ),
        (lambda u: u.replace(".com/?", ".com/x?"), "path must be /"),
        (lambda u: u.replace("Action=GetCallerIdentity", "Action=AssumeRole"), "GetCallerIdentity"),
        (lambda u: u + "&Extra=1", "not allowed"),
        (lambda u: u + "&Action=GetCallerIdentity", "repeated"),
        (
            lambda u: u.replace(
                "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id", "X-Amz-SignedHeaders=host"
            ),
            "x-k8s-aws-id",
        ),
        (lambda u: u.replace("X-Amz-Expires=60", "X-Amz-Expires=3600"), "X-Amz-Expires"),
        (
            lambda u: u.replace(
                "X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4-HMAC-SHA1"
            ),
            "X-Amz-Algorithm",
        ),
        (lambda u: u + "#frag", "fragment"),
    ],
)
def test_eks_token_structure_checks(role_credentials: AwsCredentials, mutate, message: str) -> None:
    url = _url(role_credentials)
    assert parse_eks_token(_token(url)).region == REGION
    with pytest.raises(EksTokenError, match=message):
        parse_eks_token(_token(mutate(url)))


def test_eks_token_envelope_and_age(role_credentials: AwsCredentials) -> None:
    url = _url(role_credentials)
    good = _token(url)
    with pytest.raises(EksTokenError, match="k8s-aws-v1"):
        parse_eks_token(good[len(TOKEN_PREFIX) :])
    with pytest.raises(EksTokenError, match="base64url"):
        parse_eks_token(good + "=")
    with pytest.raises(EksTokenError, match="base64url"):
        parse_eks_token(good[:30] + "+" + good[31:])  # standard-alphabet character
    signed = parse_eks_token(good).signed_at
    with pytest.raises(EksTokenError, match="expired"):
        parse_eks_token(good, now=signed + timedelta(minutes=15, seconds=1))
    with pytest.raises(EksTokenError, match="expired"):
        parse_eks_token(good, now=signed - timedelta(minutes=16))
    assert (
        parse_eks_token(good, now=signed + timedelta(minutes=14)).access_key_id
        == role_credentials.access_key_id
    )
