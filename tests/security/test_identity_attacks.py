"""Identity attacks: tokens an attacker can make, and none of them is an identity.

Each case is a token an attacker could present to ``POST /v1/token`` (the OIDC verifier) or to
the gateway (the session token codec). Every one must be refused with a 401; none may ever
verify, however it was bent.
"""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from chalicelib.config import IssuerConfig
from chalicelib.credentials.session_token import SessionTokenCodec
from chalicelib.credentials.signing_keys import SigningKey
from chalicelib.errors import EksgateError, Unauthorized
from chalicelib.identity import Identity
from chalicelib.identity.oidc import IdentityVerifier, JwksCache

pytestmark = pytest.mark.adversarial

ISSUER = "https://issuer.test"
AUDIENCE = "eksgate"
RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC = ec.generate_private_key(ec.SECP256R1())
PUBLIC_PEM = RSA.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
)


def jwk(key, kid: str) -> dict:
    algorithm = (
        jwt.algorithms.RSAAlgorithm
        if isinstance(key, rsa.RSAPrivateKey)
        else (jwt.algorithms.ECAlgorithm)
    )
    value = json.loads(algorithm.to_jwk(key.public_key()))
    value.update({"kid": kid, "use": "sig"})
    return value


JWKS = {"keys": [jwk(RSA, "rsa-1"), jwk(EC, "ec-1")]}


def verifier() -> IdentityVerifier:
    issuers = (IssuerConfig(ISSUER, (AUDIENCE,), f"{ISSUER}/jwks"),)
    return IdentityVerifier(
        issuers,
        JwksCache(lambda url: JWKS, min_refresh_seconds=0),
        leeway_seconds=30,
        max_token_bytes=16 * 1024,
    )


def claims(**overrides) -> dict:
    now = int(time.time())
    values = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-alice",
        "iat": now,
        "exp": now + 300,
        "email": "alice@example.com",
        "email_verified": True,
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def signed(payload: dict, key=RSA, alg: str = "RS256", kid: str = "rsa-1", **headers) -> str:
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid, **headers})


def unsigned(payload: dict, header: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part(header)}.{part(payload)}."


def test_the_genuine_token_verifies():
    assert verifier().verify(signed(claims())).subject == "user-alice"


ATTACKS = {
    "alg none": lambda: unsigned(claims(), {"alg": "none", "kid": "rsa-1"}),
    "alg None spelled oddly": lambda: unsigned(claims(), {"alg": "nOnE", "kid": "rsa-1"}),
    "HS256 keyed with the public key": lambda: _hs256_with_public_key(),
    "signed by another key, same kid": lambda: signed(claims(), key=OTHER_RSA),
    "unknown kid": lambda: signed(claims(), kid="rsa-404"),
    "no kid, another key": lambda: jwt.encode(claims(), OTHER_RSA, algorithm="RS256"),
    "EC key under the RSA kid": lambda: signed(claims(), key=EC, alg="ES256", kid="rsa-1"),
    "untrusted issuer": lambda: signed(claims(iss="https://evil.test")),
    "issuer with a trailing slash": lambda: signed(claims(iss=ISSUER + "/")),
    "issuer differing in case": lambda: signed(claims(iss=ISSUER.upper())),
    "wrong audience": lambda: signed(claims(aud="someone-else")),
    "audience list without ours": lambda: signed(claims(aud=["a", "b"])),
    "no audience": lambda: signed(claims(aud=None)),
    "expired": lambda: signed(claims(exp=int(time.time()) - 3600)),
    "not yet valid": lambda: signed(claims(nbf=int(time.time()) + 3600)),
    "issued in the future": lambda: signed(claims(iat=int(time.time()) + 3600)),
    "no expiry": lambda: signed(claims(exp=None)),
    "no subject": lambda: signed(claims(sub=None)),
    "empty subject": lambda: signed(claims(sub="")),
    "payload swapped after signing": lambda: _swap_payload(
        signed(claims()), claims(sub="user-admin")
    ),
    "signature stripped": lambda: signed(claims()).rsplit(".", 1)[0] + ".",
    "signature of another token": lambda: _graft(
        signed(claims(sub="user-admin"), key=OTHER_RSA), signed(claims())
    ),
    "oversized token": lambda: signed(claims(pad="x" * 20000)),
    "not a JWT": lambda: "definitely-not-a-jwt",
    "empty": lambda: "",
    "two dots only": lambda: "..",
    "header not JSON": lambda: "bm90LWpzb24." + signed(claims()).split(".", 1)[1],
    "jku header pointing elsewhere": lambda: signed(
        claims(), key=OTHER_RSA, jku="https://evil.test/jwks"
    ),
    "embedded jwk header": lambda: signed(claims(), key=OTHER_RSA, jwk=jwk(OTHER_RSA, "x")),
    "x5u header": lambda: signed(claims(), key=OTHER_RSA, x5u="https://evil.test/cert"),
}


def _hs256_with_public_key() -> str:
    header = {"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}
    import hashlib
    import hmac

    def part(value) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    signing_input = f"{part(header)}.{part(claims())}"
    mac = hmac.new(PUBLIC_PEM, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(mac).decode().rstrip("=")


def _swap_payload(token: str, payload: dict) -> str:
    header, _, signature = token.split(".")
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    return f"{header}.{body}.{signature}"


def _graft(donor: str, victim: str) -> str:
    return victim.rsplit(".", 1)[0] + "." + donor.rsplit(".", 1)[1]


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_no_forged_oidc_token_is_an_identity(attack):
    token = ATTACKS[attack]()
    with pytest.raises(EksgateError) as refused:
        verifier().verify(token)
    assert refused.value.status in (401, 400, 503), refused.value.message


def test_an_unverified_email_is_never_the_identitys_email():
    identity = verifier().verify(signed(claims(email="cto@example.com", email_verified=False)))
    assert identity.email is None and identity.claimed_email == "cto@example.com"


# --- gateway session tokens -------------------------------------------------------------


class Keys:
    current_key = SigningKey("k1", b"k" * 32)
    old_key = SigningKey("k0", b"o" * 32)

    def current(self):
        return self.current_key

    def by_kid(self, kid):
        return {"k1": self.current_key, "k0": self.old_key}.get(kid)


ALICE = Identity("user-alice", ISSUER, email="alice@example.com")


def session_token(**changes) -> str:
    token, _ = SessionTokenCodec(Keys()).issue(ALICE, "demo", "engineers", 600, {})
    payload = jwt.decode(token, options={"verify_signature": False})
    header = jwt.get_unverified_header(token)
    payload.update(changes.get("payload", {}))
    header.update(changes.get("header", {}))
    key = changes.get("key", Keys.current_key.secret)
    return jwt.encode(payload, key, algorithm=header.get("alg", "HS256"), headers=header)


SESSION_ATTACKS = {
    "signed with a guessed key": lambda: session_token(key=b"g" * 32),
    "kid of a retired key, signed with the current": lambda: session_token(header={"kid": "k0"}),
    "unknown kid": lambda: session_token(header={"kid": "k9"}),
    "policy swapped": lambda: _swap_payload(
        session_token(),
        {**jwt.decode(session_token(), options={"verify_signature": False}), "pol": "admin"},
    ),
    "cluster swapped": lambda: _swap_payload(
        session_token(),
        {
            **jwt.decode(session_token(), options={"verify_signature": False}),
            "aud": "eksgate:cluster:prod-eu",
        },
    ),
    "expired": lambda: session_token(payload={"exp": int(time.time()) - 60}),
    "alg none": lambda: unsigned(
        jwt.decode(session_token(), options={"verify_signature": False}),
        {"alg": "none", "kid": "k1"},
    ),
    "an OIDC token instead": lambda: signed(claims()),
    "HS512 instead of HS256": lambda: jwt.encode(
        jwt.decode(session_token(), options={"verify_signature": False}),
        Keys.current_key.secret,
        algorithm="HS512",
        headers={"kid": "k1"},
    ),
    "other issuer": lambda: session_token(payload={"iss": "someone-else"}),
}


@pytest.mark.parametrize("attack", sorted(SESSION_ATTACKS))
def test_no_tampered_session_token_opens_a_session(attack):
    with pytest.raises(Unauthorized):
        SessionTokenCodec(Keys()).verify(SESSION_ATTACKS[attack](), "demo")


def test_the_genuine_session_token_opens_its_session_on_its_cluster_only():
    token = session_token()
    assert SessionTokenCodec(Keys()).verify(token, "demo").identity.subject == "user-alice"
    with pytest.raises(Unauthorized):
        SessionTokenCodec(Keys()).verify(token, "prod-eu")


def test_a_remembered_session_token_is_still_refused_once_expired_retired_or_elsewhere():
    clock = {"now": time.time()}
    keys = Keys()
    codec = SessionTokenCodec(keys, clock=lambda: clock["now"])
    token, _ = codec.issue(ALICE, "demo", "engineers", 60, {})
    assert codec.verify(token, "demo").identity.subject == "user-alice"  # now remembered
    with pytest.raises(Unauthorized):
        codec.verify(token, "prod-eu")
    retired = SessionTokenCodec(
        type("Retired", (), {"by_kid": lambda self, kid: None, "current": keys.current})()
    )
    with pytest.raises(Unauthorized):
        retired.verify(token, "demo")
    keys_gone = type("Gone", (Keys,), {"by_kid": lambda self, kid: None})()
    codec._keys = keys_gone  # the key retired while the token is remembered
    with pytest.raises(Unauthorized):
        codec.verify(token, "demo")
    codec._keys = keys
    # Past its expiry (by the codec's clock) memory no longer answers: the full check does,
    # here a stand-in that refuses, since PyJWT reads the wall clock.
    clock["now"] += 3600

    def full_check(token, cluster):
        raise Unauthorized("session token has expired")

    codec._verify = full_check
    with pytest.raises(Unauthorized):
        codec.verify(token, "demo")
