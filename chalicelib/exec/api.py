"""``POST /v1/exec/{cluster}``: the route's wiring from the app's services to ``run_exec``.

The session token is verified for this cluster, its policy looked up, and the exec client
bound to the cluster's endpoint and an EKS token for the policy's role (the same role the
proxy uses; its access entry must allow ``create``/``get`` on ``pods/exec``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

import boto3

from chalicelib.credentials.eks_token import make_eks_token
from chalicelib.credentials.role_credentials import role_session_for
from chalicelib.errors import Unauthorized
from chalicelib.exec.client import ExecResult, ExecTarget, WebSocketExecClient
from chalicelib.exec.request import parse_exec_body
from chalicelib.exec.service import ExecPorts, run_exec
from chalicelib.gateway.clusters import ClusterDirectory
from chalicelib.identity import Caller
from chalicelib.identity.bearer import bearer_token

_CLIENT = WebSocketExecClient()
_DIRECTORIES: dict[int, ClusterDirectory] = {}
_LOCK = threading.Lock()


def _clusters(services: Any) -> ClusterDirectory:
    # The lead may hand over the gateway's own directory; until then one per Services.
    with _LOCK:
        key = id(services)
        if key not in _DIRECTORIES:
            _DIRECTORIES[key] = ClusterDirectory(
                services.settings.clusters, lambda region: boto3.client("eks", region_name=region)
            )
        return _DIRECTORIES[key]


def exec_route(
    services: Any, cluster: str, headers: Mapping[str, str], body: bytes | None, caller: Caller
) -> dict[str, Any]:
    token = bearer_token(dict(headers))
    if not token:
        raise Unauthorized("send your gateway session token (from `eksgate token`)")
    session = services.sessions.verify(token, cluster)
    policy = {p.name: p for p in services.policies}.get(session.policy)
    if policy is None:
        raise Unauthorized(f"policy {session.policy!r} of this session no longer exists")
    request = parse_exec_body(body)
    endpoint = _clusters(services).endpoint(cluster)

    def run(target: ExecTarget, stdin: bytes | None, deadline: float) -> ExecResult:
        credentials = services.role_credentials.credentials(
            role_session_for(session.identity, policy.role_arn, policy.name, cluster)
        )
        config = endpoint.config
        eks = make_eks_token(credentials, config.eks_cluster_name, config.region)
        return _CLIENT.run(endpoint, eks.token, target, stdin, deadline)

    return run_exec(session, policy, request, ExecPorts(audit=services.audit, run=run), caller)
