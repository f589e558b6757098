"""Benchmarks for the request hot path's pure parts: policy decisions, request resolution and
session-token verification. Run: .venv/bin/python bench/bench_core.py

Targets (per operation, one core): decide < 50 µs, resolve < 20 µs, verify < 100 µs. These are
measured here, never asserted in tests.
"""

from __future__ import annotations

import base64
import os
import timeit

from chalicelib.config import DEFAULT_POLICY_DIR
from chalicelib.credentials.session_token import SessionTokenCodec
from chalicelib.credentials.signing_keys import SigningKey
from chalicelib.identity import Identity
from chalicelib.kube.request import resolve
from chalicelib.policy import decide, load_policies


class StaticKeys:
    def __init__(self) -> None:
        self.key = SigningKey("v1", base64.b64decode(base64.b64encode(os.urandom(32))))

    def current(self) -> SigningKey:
        return self.key

    def by_kid(self, kid: str) -> SigningKey | None:
        return self.key if kid == "v1" else None


def report(name: str, seconds_per_op: float) -> None:
    print(f"{name:<40} {seconds_per_op * 1e6:8.1f} µs/op")


def main() -> None:
    policies = load_policies(DEFAULT_POLICY_DIR)
    agent = Identity(
        "repo:acme/shop:environment:production",
        "https://oidc.eksgate.local",
        claims={"repository": "acme/shop", "environment": "production"},
    )
    request = resolve("PATCH", "/apis/apps/v1/namespaces/shop/deployments/web", "")
    n = 20000
    report(
        "decide (3 policies)",
        timeit.timeit(lambda: decide(agent, "demo", request, policies), number=n) / n,
    )
    report(
        "resolve",
        timeit.timeit(
            lambda: resolve("GET", "/api/v1/namespaces/shop/pods/web-1/log", "tailLines=10"),
            number=n,
        )
        / n,
    )
    codec = SessionTokenCodec(StaticKeys())
    token, _ = codec.issue(agent, "demo", "ci-agent", 900, {"repository": "acme/shop"})
    report("session token verify", timeit.timeit(lambda: codec.verify(token, "demo"), number=n) / n)


if __name__ == "__main__":
    main()
