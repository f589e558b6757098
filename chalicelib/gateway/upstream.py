"""How requests reach a Kubernetes API server: HTTPS, verified against the cluster's CA.

One connection pool per cluster lives as long as the Lambda process, so a warm function
reuses its TLS connections. Responses are read up to a size limit and, for streams (watch,
``logs --follow``), up to a deadline: the gateway answers within API Gateway's 29 seconds.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

import urllib3

from chalicelib.errors import BadGateway, GatewayTimeout
from chalicelib.gateway.clusters import ClusterEndpoint


@dataclass(frozen=True)
class UpstreamResponse:
    status: int
    headers: dict[str, str]
    body: bytes
    truncated: bool = False  # the size limit was reached (never forwarded as is)
    cut_at_deadline: bool = False  # a stream ended by our deadline, as a watch timeout does


@dataclass(frozen=True)
class UpstreamRequest:
    method: str
    path_and_query: str
    headers: dict[str, str]
    body: bytes | None
    stream: bool = False
    deadline: float = field(default=0.0)  # time.monotonic() by which we must have answered


class Upstream(Protocol):
    def send(
        self, cluster: ClusterEndpoint, request: UpstreamRequest, max_bytes: int
    ) -> UpstreamResponse: ...


class HttpsUpstream:
    """The real transport (EKS, or the local emulator, which also speaks verified TLS)."""

    def __init__(self, connect_timeout: float = 3.0) -> None:
        self._connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._pools: dict[tuple[str, bytes], urllib3.HTTPSConnectionPool] = {}

    def _pool(self, cluster: ClusterEndpoint) -> urllib3.HTTPSConnectionPool:
        key = (cluster.url, cluster.ca_pem)
        with self._lock:
            if key not in self._pools:
                parts = urlsplit(cluster.url)
                if parts.scheme != "https" or not parts.hostname:
                    raise BadGateway(f"cluster {cluster.name!r} endpoint must be an https URL")
                self._pools[key] = urllib3.HTTPSConnectionPool(
                    parts.hostname,
                    parts.port or 443,
                    maxsize=8,
                    block=False,
                    cert_reqs="CERT_REQUIRED",
                    ca_cert_data=cluster.ca_pem.decode(),
                    retries=False,
                )
            return self._pools[key]

    def send(
        self, cluster: ClusterEndpoint, request: UpstreamRequest, max_bytes: int
    ) -> UpstreamResponse:
        remaining = max(0.5, request.deadline - time.monotonic())
        base_path = urlsplit(cluster.url).path.rstrip("/")
        try:
            response = self._pool(cluster).urlopen(
                request.method,
                base_path + request.path_and_query,
                body=request.body,
                headers=request.headers,
                preload_content=False,
                decode_content=True,
                redirect=False,
                timeout=urllib3.Timeout(connect=self._connect_timeout, read=remaining),
            )
        except urllib3.exceptions.NewConnectionError as exc:
            # urllib3 files a refused connection under timeouts; it is not one.
            raise BadGateway(
                f"cannot connect to cluster {cluster.name!r}: the connection was refused or "
                "failed; nothing was sent",
                nothing_sent=True,
            ) from exc
        except urllib3.exceptions.ConnectTimeoutError as exc:
            raise GatewayTimeout(
                f"cluster {cluster.name!r} did not accept a connection in time; nothing was sent",
                nothing_sent=True,
            ) from exc
        except urllib3.exceptions.TimeoutError as exc:
            raise GatewayTimeout(f"cluster {cluster.name!r} did not answer in time") from exc
        except urllib3.exceptions.SSLError as exc:
            raise BadGateway(
                f"TLS to cluster {cluster.name!r} failed verification against its CA"
            ) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise BadGateway(
                f"cannot reach cluster {cluster.name!r}: {type(exc).__name__}"
            ) from exc
        try:
            return _read(response, request, max_bytes)
        finally:
            response.release_conn()

    def close(self) -> None:
        with self._lock:
            for pool in self._pools.values():
                pool.close()
            self._pools.clear()


def _read(
    response: urllib3.BaseHTTPResponse, request: UpstreamRequest, max_bytes: int
) -> UpstreamResponse:
    chunks: list[bytes] = []
    size = 0
    cut = False
    try:
        for chunk in response.stream(64 * 1024):
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                response.drain_conn() if not request.stream else response.close()
                return UpstreamResponse(response.status, _headers(response), b"", truncated=True)
            if time.monotonic() >= request.deadline:
                response.close()
                if not request.stream:
                    # One deadline for the whole answer, not only for each read: a cluster
                    # that drips bytes must not hold us past API Gateway's 29 s.
                    raise GatewayTimeout("the cluster did not finish its answer in time")
                cut = True  # a watch or follow stream we end to answer in time
                break
    except urllib3.exceptions.ReadTimeoutError:
        if not request.stream:
            raise GatewayTimeout("the cluster stopped sending its answer") from None
        cut = True
    except urllib3.exceptions.ProtocolError:
        if not request.stream:
            raise BadGateway("the cluster closed the connection mid-answer") from None
        cut = True
    return UpstreamResponse(
        response.status, _headers(response), b"".join(chunks), cut_at_deadline=cut
    )


def _headers(response: urllib3.BaseHTTPResponse) -> dict[str, str]:
    return {k.lower(): v for k, v in response.headers.items()}
