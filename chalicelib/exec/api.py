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

from chalicelib.approvals.fingerprint import ApprovalSubject
from chalicelib.approvals.gate import approval_refusal
from chalicelib.approvals.model import ApprovalAsk
from chalicelib.credentials.eks_token import make_eks_token
from chalicelib.credentials.role_credentials import role_session_for
from chalicelib.credentials.session_token import GatewaySession
from chalicelib.errors import Unauthorized
from chalicelib.exec.client import ExecResult, ExecTarget, WebSocketExecClient
from chalicelib.exec.request import ExecInput, parse_exec_body
from chalicelib.exec.service import ExecPorts, exec_kube_request, run_exec
from chalicelib.gateway.clusters import ClusterDirectory
from chalicelib.identity import Caller
from chalicelib.identity.bearer import bearer_token
from chalicelib.kube.request import canonical_query
from chalicelib.policy import Decision, Policy

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

    def await_approval(decision: Decision, subject: dict[str, Any]) -> str:
        return exec_approval(services, session, policy, request, decision, subject)

    ports = ExecPorts(audit=services.audit, run=run, await_approval=await_approval)
    return run_exec(session, policy, request, ports, caller)


def exec_approval(
    services: Any,
    session: GatewaySession,
    policy: Policy,
    request: ExecInput,
    decision: Decision,
    subject: dict[str, Any],
) -> str:
    """The id of the approved ``mode: once`` approval of exactly this exec (pod, container,
    argv, stdin hash), used up; or the pending/denied refusal, as the proxy gives."""
    rule = decision.rule
    assert rule is not None and rule.approval is not None
    kube = exec_kube_request(request)
    # The command is shown (escaped) where approvers see the query; the exec's own
    # fingerprint stands for its body, so the approval binds exactly what will run.
    shown = canonical_query({"container": [request.container or ""], "command": request.argv})
    ask = ApprovalAsk(
        session.identity,
        session.cluster,
        policy.name,
        rule,
        kube,
        ApprovalSubject("POST", "", kube.path, shown, subject["fingerprint"], "exec"),
        session.session_id,
        policy.workload,
    )
    approvals = services.approvals
    channel = rule.approval.channel or services.settings.slack_channel or "#eksgate-approvals"
    usable = approvals.find_usable(ask)
    if usable is not None:
        return str(usable.approval_id)
    approval = approvals.request(ask, "")
    if approval.status != "denied":
        approval = approvals.wait(approval.approval_id, services.settings.approval_wait_seconds)
        if approval.status == "approved":
            redeemed = approvals.redeem(approval)
            if redeemed is not None:
                return str(redeemed.approval_id)
    raise approval_refusal(approval, channel)
