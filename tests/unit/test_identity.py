"""OIDC verification: every bad token is refused with a reason a person can act on."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
import urllib3
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from chalicelib.config import IssuerConfig
from chalicelib.errors import Unauthorized
from chalicelib.identity.oidc import IdentityVerifier, JwksCache, http_jwks_fetcher
from tests.jwks_server import JwksServer

ISSUER = "https://issuer.test"
AUDIENCE = "eksgate"


def public_jwk(key, kid: str) -> dict:
    if isinstance(key, rsa.RSAPrivateKey):
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    else:
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    jwk.update({"kid": kid, "use": "sig"})
    return jwk


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def shared_jwks_server():
    server = JwksServer()
    yield server
    server.close()


@pytest.fixture()
def jwks_server(shared_jwks_server, rsa_key, ec_key):
    shared_jwks_server.document = {
        "keys": [public_jwk(rsa_key, "rsa-1"), public_jwk(ec_key, "ec-1")]
    }
    shared_jwks_server.fetches = 0
    return shared_jwks_server


@pytest.fixture()
def clock():
    return {"now": time.time()}


@pytest.fixture()
def verifier(jwks_server, clock):
    issuers = (IssuerConfig(ISSUER, (AUDIENCE,), jwks_server.url, groups_claim="groups"),)
    cache = JwksCache(
        http_jwks_fetcher(urllib3.PoolManager()), min_refresh_seconds=60, clock=lambda: clock["now"]
    )
    return IdentityVerifier(issuers, cache, leeway_seconds=30, clock=lambda: clock["now"])


def claims(**overrides):
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "repo:acme/shop:ref:refs/heads/main",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "email": "agent@example.com",
        "groups": ["ci", "shop"],
        "repository": "acme/shop",
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def sign(key, kid="rsa-1", alg="RS256", **overrides) -> str:
    return jwt.encode(claims(**overrides), key, algorithm=alg, headers={"kid": kid})


def test_valid_rsa_token_gives_identity_with_claims(verifier, rsa_key):
    identity = verifier.verify(sign(rsa_key))
    assert identity.subject == "repo:acme/shop:ref:refs/heads/main"
    assert identity.issuer == ISSUER
    assert identity.email == "agent@example.com"
    assert identity.groups == ("ci", "shop")
    assert identity.claims["repository"] == "acme/shop"


def test_valid_ec_token_is_accepted(verifier, ec_key):
    assert verifier.verify(sign(ec_key, kid="ec-1", alg="ES256")).subject.startswith("repo:")


def test_unverified_email_is_not_trusted(verifier, rsa_key):
    assert verifier.verify(sign(rsa_key, email_verified=False)).email is None


def expect_refusal(verifier, token, fragment):
    with pytest.raises(Unauthorized) as err:
        verifier.verify(token)
    assert fragment in err.value.message
    assert token not in err.value.message or not token
    return err.value


def test_missing_token_is_refused(verifier):
    expect_refusal(verifier, "", "missing OIDC token")


@pytest.mark.parametrize("garbage", ["not-a-jwt", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.%%%.xx"])
def test_garbled_token_is_refused(verifier, garbage):
    expect_refusal(verifier, garbage, "not a well-formed JWT")


def test_expired_token_is_refused(verifier, rsa_key):
    now = int(time.time())
    expect_refusal(verifier, sign(rsa_key, iat=now - 900, nbf=now - 900, exp=now - 120), "expired")


def test_small_clock_skew_is_tolerated(verifier, rsa_key):
    now = int(time.time())
    assert verifier.verify(sign(rsa_key, exp=now - 10, iat=now - 300, nbf=now + 10))


def test_not_yet_valid_token_is_refused(verifier, rsa_key):
    now = int(time.time())
    expect_refusal(verifier, sign(rsa_key, nbf=now + 600), "not valid yet")


def test_token_issued_in_the_future_is_refused(verifier, rsa_key):
    now = int(time.time())
    expect_refusal(verifier, sign(rsa_key, iat=now + 600, nbf=None), "future")


def test_wrong_audience_is_refused(verifier, rsa_key):
    expect_refusal(verifier, sign(rsa_key, aud="someone-else"), "audience")


def test_wrong_issuer_is_refused_before_fetching_keys(verifier, rsa_key, jwks_server):
    expect_refusal(verifier, sign(rsa_key, iss="https://evil.example"), "not trusted")
    assert jwks_server.fetches == 0


def test_alg_none_is_refused(verifier):
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    body = base64.urlsafe_b64encode(json.dumps(claims()).encode()).rstrip(b"=").decode()
    expect_refusal(verifier, f"{header}.{body}.", "'none' is not allowed")


def test_hs256_signed_with_the_public_key_is_refused(verifier, rsa_key):
    public_pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # PyJWT refuses to HMAC with a PEM key, which is the point; forge the token by hand.
    import hashlib
    import hmac

    header = base64.urlsafe_b64encode(b'{"alg":"HS256","kid":"rsa-1"}').rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps(claims()).encode()).rstrip(b"=")
    mac = hmac.new(public_pem, header + b"." + body, hashlib.sha256).digest()
    token = b".".join([header, body, base64.urlsafe_b64encode(mac).rstrip(b"=")]).decode()
    expect_refusal(verifier, token, "'HS256' is not allowed")


def test_signature_by_another_key_is_refused(verifier):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    expect_refusal(verifier, sign(stranger), "signature does not verify")


def test_oversized_token_is_refused(verifier, rsa_key):
    expect_refusal(verifier, sign(rsa_key, padding="x" * 20000), "larger than")


def test_missing_required_claim_is_refused(verifier, rsa_key):
    expect_refusal(verifier, sign(rsa_key, exp=None), "'exp'")


def test_unknown_kid_refetches_jwks_once_then_is_rate_limited(
    verifier, rsa_key, jwks_server, clock
):
    verifier.verify(sign(rsa_key))
    assert jwks_server.fetches == 1
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks_server.document["keys"].append(public_jwk(rotated, "rsa-2"))
    # Within the refresh interval an unknown kid does not make us call the issuer again.
    expect_refusal(verifier, sign(rotated, kid="rsa-2"), "not in the issuer's JWKS")
    assert jwks_server.fetches == 1
    clock["now"] += 61
    assert verifier.verify(sign(rotated, kid="rsa-2"))
    assert jwks_server.fetches == 2
    for _ in range(5):
        expect_refusal(verifier, sign(rotated, kid="made-up"), "not in the issuer's JWKS")
    assert jwks_server.fetches == 2


def test_keys_are_cached_across_verifications(verifier, rsa_key, jwks_server):
    for _ in range(3):
        verifier.verify(sign(rsa_key))
    assert jwks_server.fetches == 1


def test_an_unverified_email_is_kept_only_to_refuse_self_approval(verifier, rsa_key):
    identity = verifier.verify(sign(rsa_key, email_verified=False))
    assert identity.email is None and identity.claimed_email == "agent@example.com"
