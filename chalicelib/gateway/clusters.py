"""Where each cluster's API server is and which CA signs its certificate.

From configuration when given (the local emulator, private setups), otherwise from
``eks:DescribeCluster``, asked once per warm Lambda.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from chalicelib.config import ClusterConfig
from chalicelib.errors import NotFound, ServiceUnavailable
from chalicelib.observability import logger


@dataclass(frozen=True)
class ClusterEndpoint:
    name: str
    url: str
    ca_pem: bytes
    config: ClusterConfig


class ClusterDirectory:
    def __init__(
        self, clusters: Mapping[str, ClusterConfig], eks_client: Callable[[str], Any]
    ) -> None:
        """``eks_client(region)`` makes an EKS client, only if a cluster needs describing."""
        self._clusters = clusters
        self._eks_client = eks_client
        self._lock = threading.Lock()
        self._endpoints: dict[str, ClusterEndpoint] = {}

    def names(self) -> tuple[str, ...]:
        """The clusters this gateway serves, sorted."""
        return tuple(sorted(self._clusters))

    def endpoint(self, name: str) -> ClusterEndpoint:
        config = self._clusters.get(name)
        if config is None:
            raise NotFound(f"cluster {name!r} is not served by this gateway")
        with self._lock:
            if name not in self._endpoints:
                self._endpoints[name] = self._lookup(config)
            return self._endpoints[name]

    def _lookup(self, config: ClusterConfig) -> ClusterEndpoint:
        if config.endpoint and config.ca_data:
            return ClusterEndpoint(
                config.name, config.endpoint, base64.b64decode(config.ca_data), config
            )
        try:
            cluster = self._eks_client(config.region).describe_cluster(
                name=config.eks_cluster_name
            )["cluster"]
            url = config.endpoint or cluster["endpoint"]
            ca_pem = base64.b64decode(config.ca_data or cluster["certificateAuthority"]["data"])
        except Exception as exc:  # botocore errors, missing fields: fail closed
            logger.error(
                "cannot describe the EKS cluster",
                extra={
                    "eks_cluster": config.eks_cluster_name,
                    "region": config.region,
                    "error": type(exc).__name__,
                },
            )
            raise ServiceUnavailable(
                f"eksgate cannot look up cluster {config.name!r}, so nothing was sent; the "
                "gateway's log says why"
            ) from exc
        return ClusterEndpoint(config.name, url, ca_pem, config)
