"""Gateway session tokens: what ``/v1/token`` hands an agent in gateway mode.

A compact HS256 JWT signed with the Secrets Manager key, carrying the ``kid`` of that key
and bound to one identity, policy, cluster and session id. The audience names the cluster,
so a token for one cluster is refused on another even before the claim is compared.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt

from chalicelib.credentials.signing_keys import SigningKeyStore
from chalicelib.errors import Unauthorized
from chalicelib.identity import Identity

TOKEN_ISSUER = "eksgate"
ALGORITHM = "HS256"
MAX_TOKEN_BYTES = 8192


@dataclass(frozen=True)
class GatewaySession:
    """A verified gateway session: who, under which policy, on which cluster, until when."""

    session_id: str
    cluster: str
    policy: str
    identity: Identity
    issued_at: int
    expires_at: int
    matched_claims: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)


def _audience(cluster: str) -> str:
    return f"eksgate:cluster:{cluster}"


# Verified tokens a warm Lambda remembers: kubectl sends one token for many requests, and
# verifying a JWT is half of the gateway's own time on a get.
VERIFIED_CACHE_SIZE = 4096


class SessionTokenCodec:
    def __init__(self, keys: SigningKeyStore, clock: Callable[[], float] = time.time) -> None:
        self._keys = keys
        self._clock = clock
        self._verified: OrderedDict[str, tuple[GatewaySession, str]] = OrderedDict()
        self._lock = threading.Lock()

    def issue(
        self,
        identity: Identity,
        cluster: str,
        policy: str,
        lifetime_seconds: int,
        matched_claims: Mapping[str, Any],
    ) -> tuple[str, GatewaySession]:
        """A new session (fresh session id) and its signed token."""
        now = int(self._clock())
        session = GatewaySession(
            session_id=uuid.uuid4().hex,
            cluster=cluster,
            policy=policy,
            identity=identity,
            issued_at=now,
            expires_at=now + lifetime_seconds,
            matched_claims=dict(matched_claims),
        )
        key = self._keys.current()
        claims = {
            "iss": TOKEN_ISSUER,
            "aud": _audience(cluster),
            "sub": identity.subject,
            "sid": session.session_id,
            "cls": cluster,
            "pol": policy,
            "oidc_iss": identity.issuer,
            "email": identity.email,
            "cem": identity.claimed_email,
            "groups": list(identity.groups),
            "clm": dict(matched_claims),
            "iat": now,
            "nbf": now,
            "exp": session.expires_at,
        }
        token = jwt.encode(claims, key.secret, algorithm=ALGORITHM, headers={"kid": key.kid})
        return token, session

    def verify(self, token: str, cluster: str) -> GatewaySession:
        """The session in ``token`` if it is valid for ``cluster``; Unauthorized otherwise.

        A token verified before is taken from memory while it is unexpired, for its own
        cluster, and its key is still accepted; anything else is verified in full (which also
        gives the precise refusal).
        """
        with self._lock:
            remembered = self._verified.get(token)
        if remembered is not None:
            session, kid = remembered
            if (
                session.cluster == cluster
                and self._clock() < session.expires_at + 5
                and self._keys.by_kid(kid) is not None
            ):
                return session
        session = self._verify(token, cluster)
        kid = str(jwt.get_unverified_header(token)["kid"])
        with self._lock:
            self._verified[token] = (session, kid)
            while len(self._verified) > VERIFIED_CACHE_SIZE:
                self._verified.popitem(last=False)
        return session

    def _verify(self, token: str, cluster: str) -> GatewaySession:
        if not token:
            raise Unauthorized("missing gateway session token; run `eksgate token` (see README)")
        if len(token) > MAX_TOKEN_BYTES:
            raise Unauthorized("gateway session token is too large")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthorized("not an eksgate session token") from None
        if header.get("alg") != ALGORITHM or not isinstance(header.get("kid"), str):
            raise Unauthorized("not an eksgate session token")
        key = self._keys.by_kid(header["kid"])
        if key is None:
            raise Unauthorized("session token signed with an unknown or retired key; get a new one")
        try:
            claims = jwt.decode(
                token,
                key.secret,
                algorithms=[ALGORITHM],
                audience=_audience(cluster),
                issuer=TOKEN_ISSUER,
                leeway=5,
                options={"require": ["exp", "iat", "sub", "aud", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized(
                "session token has expired; get a new one with `eksgate token`"
            ) from None
        except jwt.InvalidAudienceError:
            raise Unauthorized(f"session token was not issued for cluster {cluster!r}") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"invalid session token: {exc}") from exc
        if claims.get("cls") != cluster:
            raise Unauthorized(f"session token was not issued for cluster {cluster!r}")
        identity = Identity(
            subject=claims["sub"],
            issuer=claims.get("oidc_iss", ""),
            email=claims.get("email"),
            groups=tuple(claims.get("groups", ())),
            claims=claims.get("clm", {}),
            claimed_email=claims.get("cem"),
        )
        return GatewaySession(
            session_id=claims["sid"],
            cluster=cluster,
            policy=claims["pol"],
            identity=identity,
            issued_at=claims["iat"],
            expires_at=claims["exp"],
            matched_claims=claims.get("clm", {}),
        )
