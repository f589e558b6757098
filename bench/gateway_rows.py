"""Gateway rows: requests through the in-process Gateway to the local Kubernetes emulator over
verified TLS, against the same requests sent straight to the emulator by the same transport.

The gateway is built as ``chalicelib.services`` builds it, with the request path's real parts
(session tokens, the shipped policies, ``HttpsUpstream``, ``GatewayAudit``); what stands in is
STS (fixed role credentials) and DynamoDB (an audit store that keeps records in memory), so
"overhead beyond the audit writes" is the gateway's own work. Also prints the cost model.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from eksgate_local.kube_emulator import KubeEmulator

from bench import workloads
from bench.harness import Row, interleave, spread
from chalicelib.audit.recorder import GatewayAudit
from chalicelib.config import DEFAULT_POLICY_DIR, ClusterConfig
from chalicelib.credentials.eks_token import AwsCredentials
from chalicelib.credentials.session_token import SessionTokenCodec
from chalicelib.credentials.signing_keys import SigningKey
from chalicelib.gateway.clusters import ClusterEndpoint
from chalicelib.gateway.exchange import GatewayLimits, IncomingRequest
from chalicelib.gateway.forward import Forwarder
from chalicelib.gateway.pipeline import Gateway
from chalicelib.gateway.upstream import HttpsUpstream, UpstreamRequest
from chalicelib.identity import Identity
from chalicelib.policy import load_policies

AGENT = Identity(
    "repo:acme/shop:environment:production",
    "https://oidc.eksgate.local",
    claims={"repository": "acme/shop", "environment": "production"},
)
PRINCIPAL = "arn:aws:sts::123456789012:assumed-role/eksgate-ci-agent/bench"
PODS = 500


class _Keys:
    key = SigningKey("k1", b"bench-signing-key-32-bytes-long!")

    def current(self) -> SigningKey:
        return self.key

    def by_kid(self, kid: str) -> SigningKey | None:
        return self.key if kid == "k1" else None


class _Clusters:
    def __init__(self, emulator: KubeEmulator) -> None:
        self.cluster = ClusterEndpoint(
            "demo", emulator.url, emulator.ca_pem, ClusterConfig("demo", "us-east-1")
        )

    def names(self) -> tuple[str, ...]:
        return ("demo",)

    def endpoint(self, name: str) -> ClusterEndpoint:
        return self.cluster


class _Roles:
    """STS stand-in: role credentials as RoleCredentialCache hands them out when warm."""

    def credentials(self, request: Any) -> AwsCredentials:
        return AwsCredentials(
            "ASIAEXAMPLE", "secret", "token", datetime.now(UTC) + timedelta(hours=1)
        )


class TimedUpstream:
    """The real transport, timing each send: the gateway's own time is the rest of a call."""

    def __init__(self) -> None:
        self.inner = HttpsUpstream()
        self.seconds: list[float] = []

    def send(self, cluster: ClusterEndpoint, request: UpstreamRequest, max_bytes: int) -> Any:
        start = time.perf_counter()
        try:
            return self.inner.send(cluster, request, max_bytes)
        finally:
            self.seconds.append(time.perf_counter() - start)


class MemoryAuditStore:
    """DynamoDB stand-in: keeps each record, so the cost model can count and size the writes."""

    def __init__(self) -> None:
        self.appended: list[dict] = []

    def append(self, fields: Any) -> None:
        self.appended.append(dict(fields))


def _seed(emulator: KubeEmulator, token: str) -> None:
    """500 realistic pods in namespace shop, created through the emulator's API."""
    upstream = HttpsUpstream()
    cluster = _Clusters(emulator).cluster
    for i in range(PODS):
        pod = workloads.pod(i)
        for key in (
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
            "ownerReferences",
        ):
            pod["metadata"].pop(key, None)
        answer = upstream.send(
            cluster,
            UpstreamRequest(
                "POST",
                "/api/v1/namespaces/shop/pods",
                {"authorization": f"Bearer {token}", "content-type": "application/json"},
                json.dumps(pod).encode(),
                deadline=time.monotonic() + 10,
            ),
            1 << 20,
        )
        if answer.status not in (200, 201, 409):
            raise RuntimeError(f"seeding pod {i}: {answer.status} {answer.body[:300]!r}")


def _setup(emulator: KubeEmulator):
    audit_store = MemoryAuditStore()
    upstream = TimedUpstream()
    gateway = Gateway(
        SessionTokenCodec(_Keys()),
        load_policies(DEFAULT_POLICY_DIR),
        Forwarder(_Clusters(emulator), _Roles(), upstream),  # type: ignore[arg-type]
        GatewayAudit(audit_store),  # type: ignore[arg-type]
        None,
        GatewayLimits(1 << 20, 20),
    )
    session, _ = SessionTokenCodec(_Keys()).issue(
        AGENT, "demo", "ci-agent", 900, {"repository": "acme/shop", "environment": "production"}
    )
    return gateway, session, audit_store, upstream


def _through_gateway(gateway: Gateway, session: str, path: str):
    def call() -> None:
        response = gateway.handle(
            IncomingRequest(
                "demo",
                "GET",
                path,
                {},
                {"authorization": f"Bearer {session}", "accept": "application/json"},
                None,
                29.0,
            )
        )
        if response.status != 200:
            raise RuntimeError(f"gateway answered {response.status}: {response.body[:300]}")

    return call


def _bare(emulator: KubeEmulator, path: str, token: str):
    upstream = HttpsUpstream()
    cluster = _Clusters(emulator).cluster

    def call() -> None:
        answer = upstream.send(
            cluster,
            UpstreamRequest(
                "GET",
                path,
                {"authorization": f"Bearer {token}", "accept": "application/json"},
                None,
                deadline=time.monotonic() + 29,
            ),
            64 << 20,
        )
        if answer.status != 200:
            raise RuntimeError(f"emulator answered {answer.status}")

    return call


LAMBDA_GB_SECOND = 0.0000166667  # x86, us-east-1
LAMBDA_PER_MILLION = 0.20
API_GATEWAY_REST_PER_MILLION = 3.50  # Chalice deploys a REST API (first 333M/month)
DYNAMODB_WRITE_PER_MILLION = 0.625  # on-demand write request units
DYNAMODB_READ_PER_MILLION = 0.125  # on-demand read request units
FULL_VCPU_MB = 1769  # Lambda gives one full vCPU at 1,769 MB, CPU in proportion below it


def cost_model(handler_seconds: float, upstream_seconds: float, writes: list[int]) -> list[str]:
    """Dollars per million proxied gets, from measured times and the audit records written."""
    wru = statistics.mean(writes)
    lines = [
        "cost model (per million proxied gets, us-east-1 list prices):",
        f"  measured here: gateway's own CPU {handler_seconds * 1e3:.2f} ms on one core, "
        f"upstream wait {upstream_seconds * 1e3:.2f} ms",
        f"  scaling: Lambda CPU is proportional to memory up to one vCPU at {FULL_VCPU_MB} MB, "
        "so CPU time x 1769/MB; the upstream wait is not scaled (it is network, not CPU). "
        "This machine's core is taken as Lambda's vCPU.",
        f"  DynamoDB: {wru:.2f} write units per request (audit records, 1 WRU per KB each), "
        "plus at most 1 consistent read when a Lambda first sees the session",
    ]
    verdicts = []
    for memory in (512, 1024):
        billed = handler_seconds * FULL_VCPU_MB / memory + upstream_seconds
        billed_ms = math.ceil(billed * 1e3)  # Lambda bills per started millisecond
        compute = billed_ms / 1e3 * memory / 1024 * LAMBDA_GB_SECOND * 1e6
        dynamo = wru * DYNAMODB_WRITE_PER_MILLION + DYNAMODB_READ_PER_MILLION
        total = compute + LAMBDA_PER_MILLION + API_GATEWAY_REST_PER_MILLION + dynamo
        verdicts.append(total <= 5)
        lines.append(
            f"  {memory:>4} MB: {billed_ms} ms billed -> Lambda ${compute:.2f} + requests "
            f"${LAMBDA_PER_MILLION:.2f} + API Gateway ${API_GATEWAY_REST_PER_MILLION:.2f} + "
            f"DynamoDB ${dynamo:.2f} = ${total:.2f}   target <= $5   "
            f"{'PASS' if total <= 5 else 'FAIL'}"
        )
    return lines


def run(quick: bool = False) -> tuple[list[Row], list[str]]:
    rounds = 5 if quick else 15
    token = "k8s-aws-v1.bench"
    # The emulator accepts the EKS tokens the gateway makes from the stand-in credentials.
    with KubeEmulator(lambda t: PRINCIPAL if t.startswith("k8s-aws-v1.") else None) as emulator:
        _seed(emulator, token)
        gateway, session, audit_store, upstream = _setup(emulator)
        rows = []
        list_path = "/api/v1/namespaces/shop/pods"
        pair = interleave(
            _through_gateway(gateway, session, list_path), _bare(emulator, list_path, token), rounds
        )
        p50, floor = statistics.median(pair.a), statistics.median(pair.b)
        rows.append(
            Row(
                name=f"a {PODS}-pod list through the in-process gateway",
                measured=f"{p50 * 1e3:.1f} ms p50 = {pair.ratio():.2f}x the bare upstream",
                floor=f"the emulator over TLS, same transport: {floor * 1e3:.1f} ms p50",
                spread=pair.ratio_spread(),
                target="<= 3x the upstream",
                passed=pair.ratio() <= 3,
            )
        )
        get_path = "/api/v1/namespaces/shop/pods/" + workloads.pod(7)["metadata"]["name"]
        before = len(audit_store.appended)
        through = _through_gateway(gateway, session, get_path)
        totals: list[float] = []

        def timed_get() -> None:
            start = time.perf_counter()
            through()
            totals.append(time.perf_counter() - start)

        upstream.seconds.clear()
        pair = interleave(timed_get, _bare(emulator, get_path, token), rounds * 20)
        per_request = audit_store.appended[before:]
        calls = len(totals)
        # Per call: the whole handle() less the time inside the upstream transport.
        overhead = [t - u for t, u in zip(totals, upstream.seconds, strict=False)]
        median_overhead = statistics.median(overhead)
        rows.append(
            Row(
                name="gateway overhead on a get, beyond the audit writes",
                measured=f"{median_overhead * 1e3:.2f} ms p50 (handle() less its upstream send)",
                floor=f"bare upstream get: {statistics.median(pair.b) * 1e3:.2f} ms p50; through "
                f"the gateway {statistics.median(pair.a) * 1e3:.2f} ms p50 ({pair.ratio():.2f}x)",
                spread=spread(overhead, " ms", 1e3),
                target="<= 1 ms",
                passed=median_overhead <= 0.001,
            )
        )
        sizes = [len(json.dumps(r, default=str)) for r in per_request]
        records_per_call = len(per_request) / calls
        writes = [math.ceil(s / 1024) for s in sizes]
        per_request_wru = [sum(writes) / calls]
        rows[-1].notes.append(
            f"{records_per_call:.1f} audit records per get, {statistics.mean(sizes):.0f} bytes "
            "each on average"
        )
        model = cost_model(median_overhead, statistics.median(pair.b), per_request_wru)
    return rows, model


if __name__ == "__main__":
    import sys

    found, lines = run("--quick" in sys.argv)
    for row in found:
        print("\n".join(row.lines()))
    print("\n".join(lines))
