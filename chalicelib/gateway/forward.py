"""Sending an exchange to its cluster as the policy's role: the only way a request leaves.

The caller's own credentials never do: the request carries an EKS token for the policy's role
(STS AssumeRole per caller, cached), and only a short allowlist of the caller's headers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from chalicelib.credentials.eks_token import AwsCredentials, EksToken, make_eks_token
from chalicelib.credentials.role_credentials import RoleCredentialCache, role_session_for
from chalicelib.errors import EksgateError
from chalicelib.gateway.clusters import ClusterDirectory
from chalicelib.gateway.exchange import ANSWER_MARGIN_SECONDS, Exchange
from chalicelib.gateway.gateway_calls import GatewayCall
from chalicelib.gateway.upstream import Upstream, UpstreamRequest, UpstreamResponse

MAX_UPSTREAM_BYTES = 16 * 1024 * 1024
EKS_TOKEN_REUSE_MARGIN = timedelta(minutes=5)
# Only these request headers reach the cluster; Authorization, Cookie, Impersonate-*,
# hop-by-hop headers and anything else the caller sent are dropped.
FORWARDED_HEADERS = ("content-type", "user-agent", "kubectl-command", "kubectl-session")


class Forwarder:
    def __init__(
        self,
        clusters: ClusterDirectory,
        role_credentials: RoleCredentialCache,
        upstream: Upstream,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clusters = clusters
        self._roles = role_credentials
        self._upstream = upstream
        self._clock = clock
        self._eks_tokens: dict[tuple[str, str, str], EksToken] = {}

    def cluster_names(self) -> tuple[str, ...]:
        return self._clusters.names()

    def send(self, exchange: Exchange) -> UpstreamResponse:
        """The exchange itself; the answer is not masked yet."""
        query, audit_id = exchange.forwarded_query, exchange.incoming.audit_id
        return self._send(exchange, exchange.method, query, exchange.body, audit_id)

    def send_gateway_call(self, exchange: Exchange, call: GatewayCall) -> UpstreamResponse:
        """One of the gateway's own requests for this exchange (its dry run, its read of the
        current object), under that call's own Audit-ID."""
        return self._send(exchange, call.method, call.query, call.body, call.audit_id)

    def _send(
        self, exchange: Exchange, method: str, query: str, body: bytes | None, audit_id: str
    ) -> UpstreamResponse:
        try:
            cluster = self._clusters.endpoint(exchange.cluster)
            credentials = self._roles.credentials(
                role_session_for(
                    exchange.session.identity,
                    exchange.policy.role_arn,
                    exchange.policy.name,
                    exchange.cluster,
                )
            )
            eks = self._eks_token(
                credentials, cluster.config.eks_cluster_name, cluster.config.region
            )
        except EksgateError as failure:
            failure.nothing_sent = True  # failed before anything left for the cluster
            raise
        headers = {
            name: exchange.incoming.headers[name]
            for name in FORWARDED_HEADERS
            if name in exchange.incoming.headers and (body or name != "content-type")
        }
        if body:
            headers["content-type"] = exchange.incoming.headers.get("content-type") or (
                "application/json"
            )
        headers.update(
            {
                "authorization": f"Bearer {eks.token}",
                "accept": exchange.accept,
                "accept-encoding": "gzip",
                "audit-id": audit_id,
            }
        )
        now = self._clock()
        deadline = now + max(1.0, exchange.incoming.seconds_left(now) - ANSWER_MARGIN_SECONDS)
        streaming = exchange.streaming and method == exchange.method
        if streaming:
            # Watches and `logs --follow` end here so clients see a clean end and reconnect.
            deadline = min(deadline, now + exchange.stream_seconds + 2)
        path = exchange.request.path + (f"?{query}" if query else "")
        return self._upstream.send(
            cluster,
            UpstreamRequest(method, path, headers, body or None, streaming, deadline),
            MAX_UPSTREAM_BYTES,
        )

    def _eks_token(self, credentials: AwsCredentials, eks_name: str, region: str) -> EksToken:
        """An EKS token for these credentials, reused while it has minutes left (a presign
        per request would be wasted work on the hot path)."""
        key = (credentials.access_key_id, eks_name, region)
        cached = self._eks_tokens.get(key)
        now = datetime.now(UTC)
        if cached is None or cached.expiration - now < EKS_TOKEN_REUSE_MARGIN:
            cached = make_eks_token(credentials, eks_name, region, now=now)
            self._eks_tokens[key] = cached
        return cached
