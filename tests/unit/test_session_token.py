"""Gateway session tokens: bound to cluster, signed with a rotatable Secrets Manager key."""

from __future__ import annotations

import base64
import os

import jwt
import pytest
from eksgate_local.aws import rotate_signing_key

from chalicelib.credentials.role_credentials import sts_safe_name
from chalicelib.credentials.session_token import SessionTokenCodec
from chalicelib.credentials.signing_keys import SecretsManagerKeyStore
from chalicelib.errors import ServiceUnavailable, Unauthorized
from chalicelib.identity import Identity

IDENTITY = Identity(
    "user:alice", "https://issuer.test", "alice@example.com", ("eng",), {"groups": ["eng"]}
)


@pytest.fixture()
def clock():
    return {"t": 1_000_000.0}


@pytest.fixture()
def keys(signing_secret, clock):
    from tests.conftest import SECRET_ID

    return SecretsManagerKeyStore(
        signing_secret, SECRET_ID, min_refresh_seconds=0, clock=lambda: clock["t"]
    )


def test_round_trip_binds_identity_policy_cluster(keys):
    codec = SessionTokenCodec(keys)
    token, session = codec.issue(IDENTITY, "demo", "engineers", 600, {"groups": ["eng"]})
    verified = codec.verify(token, "demo")
    assert verified.session_id == session.session_id and verified.policy == "engineers"
    assert verified.identity.subject == "user:alice"
    assert verified.identity.email == "alice@example.com"
    assert verified.expires_at - verified.issued_at == 600


def test_token_for_another_cluster_is_refused(keys):
    codec = SessionTokenCodec(keys)
    token, _ = codec.issue(IDENTITY, "demo", "engineers", 600, {})
    with pytest.raises(Unauthorized, match="not issued for cluster 'prod'"):
        codec.verify(token, "prod")


def test_expired_token_is_refused(keys):
    now = {"t": 1_000_000.0}
    codec = SessionTokenCodec(keys, clock=lambda: now["t"])
    token, _ = codec.issue(IDENTITY, "demo", "engineers", 60, {})
    with pytest.raises(Unauthorized, match="expired"):
        SessionTokenCodec(keys).verify(token, "demo")


def test_bad_signature_is_refused(keys):
    codec = SessionTokenCodec(keys)
    token, _ = codec.issue(IDENTITY, "demo", "engineers", 600, {})
    kid = jwt.get_unverified_header(token)["kid"]
    forged = jwt.encode(
        jwt.decode(token, options={"verify_signature": False}),
        b"k" * 32,
        algorithm="HS256",
        headers={"kid": kid},
    )
    with pytest.raises(Unauthorized, match="Signature"):
        codec.verify(forged, "demo")


def test_unknown_kid_is_refused(keys):
    forged = jwt.encode({"sub": "x"}, b"k" * 32, algorithm="HS256", headers={"kid": "nope"})
    with pytest.raises(Unauthorized, match="unknown or retired key"):
        SessionTokenCodec(keys).verify(forged, "demo")


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c"])
def test_garbage_is_refused(keys, token):
    with pytest.raises(Unauthorized):
        SessionTokenCodec(keys).verify(token, "demo")


def test_an_oidc_token_is_not_a_session_token(keys, oidc_issuer):
    with pytest.raises(Unauthorized, match="not an eksgate session token"):
        SessionTokenCodec(keys).verify(oidc_issuer.mint("ci-agent"), "demo")


def test_rotation_keeps_live_sessions_and_signs_with_the_new_key(keys, signing_secret, clock):
    from tests.conftest import SECRET_ID

    codec = SessionTokenCodec(keys)
    old_token, _ = codec.issue(IDENTITY, "demo", "engineers", 600, {})
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    new_kid = rotate_signing_key(signing_secret, SECRET_ID)
    clock["t"] += 301  # the cached key expires
    new_token, _ = codec.issue(IDENTITY, "demo", "engineers", 600, {})
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid != old_kid
    assert codec.verify(old_token, "demo") and codec.verify(new_token, "demo")
    rotate_signing_key(signing_secret, SECRET_ID)
    clock["t"] += 301
    with pytest.raises(Unauthorized, match="retired"):
        codec.verify(old_token, "demo")  # two rotations later, the first key is gone


def test_a_rotated_key_is_found_before_the_cache_expires(keys, signing_secret):
    from tests.conftest import SECRET_ID

    keys.current()
    new_kid = rotate_signing_key(signing_secret, SECRET_ID)
    assert keys.by_kid(new_kid) is not None


def test_short_key_fails_closed(aws):
    client = aws.client("secretsmanager")
    client.create_secret(Name="short", SecretString=base64.b64encode(os.urandom(8)).decode())
    with pytest.raises(ServiceUnavailable, match="fewer than 32 bytes"):
        SecretsManagerKeyStore(client, "short").current()


@pytest.mark.parametrize(
    "text",
    [
        "alice@example.com",
        "repo:acme/shop:ref:refs/heads/main",
        "x",
        "é" * 10,
        "a" * 200,
    ],
)
def test_sts_names_are_valid_and_bounded(text):
    import re

    name = sts_safe_name(text)
    assert 2 <= len(name) <= 64 and re.fullmatch(r"[\w+=,.@-]+", name)


def test_long_sts_names_stay_distinct():
    assert sts_safe_name("a" * 100 + "1") != sts_safe_name("a" * 100 + "2")


def test_the_claimed_email_travels_in_the_session(keys):
    from dataclasses import replace

    codec = SessionTokenCodec(keys)
    unverified = replace(IDENTITY, email=None, claimed_email="alice@example.com")
    token, _ = codec.issue(unverified, "demo", "engineers", 600, {})
    verified = codec.verify(token, "demo").identity
    assert verified.email is None and verified.claimed_email == "alice@example.com"
