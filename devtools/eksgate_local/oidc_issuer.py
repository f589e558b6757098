"""A local OIDC issuer (development and test tool): discovery, JWKS and minted ID tokens.

Its ``iss`` is a fixed name (``https://oidc.eksgate.local`` by default) so that policies can
name it, while its documents are served on a free loopback port; the gateway is told the
JWKS URL separately, exactly as it would be for an issuer behind a private endpoint.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

LOCAL_ISSUER = "https://oidc.eksgate.local"
LOCAL_AUDIENCE = "eksgate"


@dataclass(frozen=True)
class DemoIdentity:
    name: str
    description: str
    claims: dict[str, Any] = field(default_factory=dict)


# The named identities the demo and the end-to-end tests act as.
DEMO_IDENTITIES: dict[str, DemoIdentity] = {
    "ci-agent": DemoIdentity(
        "ci-agent",
        "an AI coding agent running in a GitHub Actions job of acme/shop",
        {
            "sub": "repo:acme/shop:environment:production",
            "repository": "acme/shop",
            "repository_owner": "acme",
            "ref": "refs/heads/main",
            "environment": "production",
            "workflow": "agent",
            "actor": "shop-agent[bot]",
            "email": "shop-agent@example.com",
            "email_verified": True,
        },
    ),
    "engineer": DemoIdentity(
        "engineer",
        "Alice, an engineer on the shop team",
        {
            "sub": "user:alice",
            "email": "alice@example.com",
            "email_verified": True,
            "groups": ["engineering", "shop-team"],
        },
    ),
    "approver": DemoIdentity(
        "approver",
        "Bob, platform on-call, who approves changes",
        {
            "sub": "user:bob",
            "email": "bob@example.com",
            "email_verified": True,
            "groups": ["engineering", "platform-oncall"],
        },
    ),
    "auditor": DemoIdentity(
        "auditor",
        "Dana, from security, who reads the audit trail",
        {
            "sub": "user:dana",
            "email": "dana@example.com",
            "email_verified": True,
            "groups": ["security-auditors"],
        },
    ),
}


class LocalOidcIssuer:
    """Serves ``/.well-known/openid-configuration`` and ``/jwks`` and mints RS256 ID tokens."""

    def __init__(self, issuer: str = LOCAL_ISSUER, host: str = "127.0.0.1", port: int = 0) -> None:
        self.issuer = issuer
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex[:16]
        self._host = host
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self._host}:{self._server.server_port}"

    @property
    def jwks_url(self) -> str:
        return f"{self.base_url}/jwks"

    def jwks(self) -> dict[str, Any]:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        public.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return {"keys": [public]}

    def mint(
        self,
        identity: str | dict[str, Any],
        *,
        audience: str = LOCAL_AUDIENCE,
        ttl_seconds: int = 600,
        now: float | None = None,
        **overrides: Any,
    ) -> str:
        """An ID token for a named demo identity (or explicit claims); overrides win."""
        claims = dict(DEMO_IDENTITIES[identity].claims if isinstance(identity, str) else identity)
        issued = int(time.time() if now is None else now)
        claims.update(
            {
                "iss": self.issuer,
                "aud": audience,
                "iat": issued,
                "nbf": issued,
                "exp": issued + ttl_seconds,
                "jti": uuid.uuid4().hex,
            }
        )
        claims.update(overrides)
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})

    def start(self) -> LocalOidcIssuer:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="oidc-issuer",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)

    def __enter__(self) -> LocalOidcIssuer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                if self.path == "/.well-known/openid-configuration":
                    body = {
                        "issuer": issuer.issuer,
                        "jwks_uri": issuer.jwks_url,
                        "id_token_signing_alg_values_supported": ["RS256"],
                        "response_types_supported": ["id_token"],
                        "subject_types_supported": ["public"],
                    }
                elif self.path == "/jwks":
                    body = issuer.jwks()
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass  # keep the demo's terminal readable

        return Handler
