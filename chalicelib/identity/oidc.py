"""Who is calling: OIDC ID tokens verified against their issuer's JWKS.

Only asymmetric algorithms are accepted, so a token can never be "signed" with a public key
that an attacker also knows (the classic HS256-with-the-RSA-public-key confusion) and never
with ``none``. The issuer must be on the allowlist before any key is fetched, so an attacker
cannot make us fetch JWKS from a URL of their choosing.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import jwt

from chalicelib.config import IssuerConfig
from chalicelib.errors import ServiceUnavailable, Unauthorized
from chalicelib.identity.model import Identity
from chalicelib.observability import logger

ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
MAX_JWKS_BYTES = 256 * 1024


JwksFetcher = Callable[[str], Mapping[str, Any]]


class JwksCache:
    """JWKS documents by URL: cached, refetched on an unknown ``kid``, at a bounded rate.

    The refresh bound matters: without it, every token with a made-up ``kid`` would make us
    call the issuer, turning the gateway into an amplifier against it (and a slow path).
    """

    def __init__(
        self,
        fetch: JwksFetcher,
        *,
        max_age_seconds: float = 3600,
        min_refresh_seconds: float = 60,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._max_age = max_age_seconds
        self._min_refresh = min_refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._sets: dict[str, tuple[float, jwt.PyJWKSet]] = {}

    def key(self, jwks_url: str, kid: str | None) -> jwt.PyJWK:
        """The signing key ``kid`` (or the only key, if the token names none)."""
        with self._lock:
            cached = self._sets.get(jwks_url)
            now = self._clock()
            if cached is None or now - cached[0] > self._max_age:
                cached = self._refresh(jwks_url, now)
            found = _find_key(cached[1], kid)
            if found is None and now - cached[0] >= self._min_refresh:
                # The issuer may have rotated its keys since we last looked.
                cached = self._refresh(jwks_url, now)
                found = _find_key(cached[1], kid)
        if found is None:
            raise Unauthorized(
                f"token signing key {kid!r} is not in the issuer's JWKS; the token was not "
                "signed by this issuer or its key was retired"
            )
        return found

    def _refresh(self, jwks_url: str, now: float) -> tuple[float, jwt.PyJWKSet]:
        try:
            document = self._fetch(jwks_url)
            key_set = jwt.PyJWKSet.from_dict(dict(document))
        except (jwt.PyJWKSetError, jwt.InvalidKeyError, ValueError, OSError) as exc:
            logger.warning(
                "JWKS could not be loaded", extra={"jwks_url": jwks_url, "error": repr(exc)}
            )
            raise ServiceUnavailable(
                f"could not load the issuer's signing keys from {jwks_url}"
            ) from exc
        entry = (now, key_set)
        self._sets[jwks_url] = entry
        return entry


def _find_key(key_set: jwt.PyJWKSet, kid: str | None) -> jwt.PyJWK | None:
    usable = [k for k in key_set.keys if getattr(k, "public_key_use", None) in (None, "sig")]
    if kid is None:
        return usable[0] if len(usable) == 1 else None
    return next((k for k in usable if k.key_id == kid), None)


def http_jwks_fetcher(http: Any, timeout: float = 3.0) -> JwksFetcher:
    """A fetcher using a urllib3 PoolManager; the response size is bounded."""

    def fetch(url: str) -> Mapping[str, Any]:
        response = http.request(
            "GET",
            url,
            timeout=timeout,
            preload_content=False,
            retries=False,
            headers={"Accept": "application/json"},
        )
        try:
            if response.status != 200:
                raise OSError(f"HTTP {response.status}")
            body = response.read(MAX_JWKS_BYTES + 1)
            if len(body) > MAX_JWKS_BYTES:
                raise OSError("JWKS document too large")
            return json.loads(body)
        finally:
            response.release_conn()

    return fetch


class IdentityVerifier:
    """Verifies OIDC ID tokens for the configured issuers and turns them into Identities."""

    def __init__(
        self,
        issuers: tuple[IssuerConfig, ...],
        jwks: JwksCache,
        *,
        leeway_seconds: int = 30,
        max_token_bytes: int = 16 * 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._issuers = {i.issuer: i for i in issuers}
        self._jwks = jwks
        self._leeway = leeway_seconds
        self._max_token_bytes = max_token_bytes
        self._clock = clock

    def verify(self, token: str) -> Identity:
        """Return the Identity in ``token``; Unauthorized with the reason if it is not valid."""
        if not token:
            raise Unauthorized("missing OIDC token: send Authorization: Bearer <id token>")
        if len(token) > self._max_token_bytes:
            raise Unauthorized(f"OIDC token is larger than {self._max_token_bytes} bytes")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"OIDC token is not a well-formed JWT: {exc}") from exc
        algorithm = header.get("alg")
        if algorithm not in ASYMMETRIC_ALGORITHMS:
            raise Unauthorized(
                f"OIDC token algorithm {algorithm!r} is not allowed; only asymmetric "
                f"algorithms are accepted ({', '.join(sorted(ASYMMETRIC_ALGORITHMS))})"
            )
        issuer = unverified.get("iss")
        config = self._issuers.get(issuer) if isinstance(issuer, str) else None
        if config is None:
            raise Unauthorized(f"OIDC token issuer {issuer!r} is not trusted by this gateway")
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise Unauthorized("OIDC token header 'kid' must be a string")
        key = self._jwks.key(config.jwks_url, kid)
        claims = self._decode(token, key, algorithm, config)
        return _identity_from_claims(claims, config)

    def _decode(
        self, token: str, key: jwt.PyJWK, algorithm: str, config: IssuerConfig
    ) -> dict[str, Any]:
        now = self._clock()
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                audience=list(config.audiences),
                issuer=config.issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "iss", "sub", "aud"], "verify_iat": True},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized(
                "OIDC token has expired; fetch a fresh one from your issuer"
            ) from exc
        except jwt.ImmatureSignatureError as exc:
            raise Unauthorized(
                "OIDC token is not valid yet (nbf/iat in the future); check clocks"
            ) from exc
        except jwt.InvalidAudienceError as exc:
            raise Unauthorized(
                f"OIDC token audience is wrong; request a token with audience "
                f"{' or '.join(config.audiences)}"
            ) from exc
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthorized(f"OIDC token lacks the required claim {exc.claim!r}") from exc
        except jwt.InvalidSignatureError as exc:
            raise Unauthorized("OIDC token signature does not verify") from exc
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise Unauthorized(f"OIDC token is invalid: {exc}") from exc
        # PyJWT checks iat's type; a token issued in the future is as suspect as one not yet valid.
        if isinstance(claims.get("iat"), (int, float)) and claims["iat"] > now + self._leeway:
            raise Unauthorized("OIDC token was issued in the future; check clocks")
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise Unauthorized("OIDC token 'sub' must be a non-empty string")
        return claims


def _identity_from_claims(claims: dict[str, Any], config: IssuerConfig) -> Identity:
    groups = claims.get(config.groups_claim, ())
    if isinstance(groups, str):
        groups = (groups,)
    email = claims.get("email")
    claimed_email = email if isinstance(email, str) and email else None
    if claims.get("email_verified") is False:
        # An unverified address is never trusted to grant anything (it stays claimed_email).
        email = None
    return Identity(
        subject=claims["sub"],
        issuer=claims["iss"],
        email=email if isinstance(email, str) else None,
        groups=tuple(g for g in groups if isinstance(g, str))
        if isinstance(groups, (list, tuple))
        else (),
        claims=claims,
        claimed_email=claimed_email,
    )
