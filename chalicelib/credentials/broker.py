"""The credential broker: an OIDC identity in, a short-lived, policy-scoped credential out."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from chalicelib.config import Settings
from chalicelib.credentials.eks_token import make_eks_token
from chalicelib.credentials.exec_credential import API_VERSIONS, V1BETA1, exec_credential
from chalicelib.credentials.role_credentials import RoleCredentialCache, role_session_for
from chalicelib.credentials.session_token import SessionTokenCodec
from chalicelib.errors import BadRequest, Forbidden, NotFound, PayloadTooLarge
from chalicelib.identity import Identity
from chalicelib.policy import Policy, PolicyIndex, PolicySet, select_policy

MODES = ("gateway", "direct")
# (identity, cluster, policy) -> (an approved, open direct grant, its role ARN) or None
GrantLookup = Callable[[Identity, str, Policy], tuple[Any, str] | None]


@dataclass(frozen=True)
class TokenRequest:
    cluster: str
    mode: str = "gateway"
    api_version: str = V1BETA1


@dataclass(frozen=True)
class IssuedCredential:
    """What the broker issued; ``exec_credential`` is the response body."""

    exec_credential: dict
    mode: str
    policy: str
    cluster: str
    session_id: str | None
    expires_at: datetime
    role_session_name: str | None = None
    source_identity: str | None = None
    approval_id: str | None = None  # the approved direct grant this token was issued under
    window_ends_at: int | None = None  # when that grant's window closes
    role_arn: str | None = None


def parse_token_request(body: bytes | None, max_bytes: int) -> TokenRequest:
    """Validate the ``/v1/token`` body; BadRequest says exactly what is wrong."""
    if body is None or not body.strip():
        raise BadRequest('request body is empty; send {"cluster": "<name>", "mode": "gateway"}')
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"request body is larger than {max_bytes} bytes")
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadRequest(
            'request body is not JSON; send {"cluster": "<name>", "mode": "gateway"}'
        ) from None
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object")
    unknown = set(data) - {"cluster", "mode", "apiVersion"}
    if unknown:
        raise BadRequest(
            f"unknown field(s) {', '.join(sorted(unknown))}; expected cluster, mode, apiVersion"
        )
    cluster = data.get("cluster")
    if not isinstance(cluster, str) or not cluster:
        raise BadRequest("field 'cluster' is required and must be a string")
    mode = data.get("mode", "gateway")
    if mode not in MODES:
        raise BadRequest(f"field 'mode' must be one of {', '.join(MODES)}")
    api_version = data.get("apiVersion", V1BETA1)
    if api_version not in API_VERSIONS:
        raise BadRequest(f"field 'apiVersion' must be one of {', '.join(API_VERSIONS)}")
    return TokenRequest(cluster=cluster, mode=mode, api_version=api_version)


class Broker:
    def __init__(
        self,
        settings: Settings,
        policies: Iterable[Policy],
        sessions: SessionTokenCodec,
        role_credentials: RoleCredentialCache,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        direct_grants: GrantLookup | None = None,
    ) -> None:
        self._direct_grants = direct_grants
        self._settings = settings
        # Compiled once: choosing a caller's policy is a keyed lookup, not a walk over all.
        self._policies = (
            policies.selection_index if isinstance(policies, PolicySet) else PolicyIndex(policies)
        )
        self._sessions = sessions
        self._roles = role_credentials
        self._clock = clock

    def issue(self, identity: Identity, request: TokenRequest) -> IssuedCredential:
        """A credential for ``identity`` on ``request.cluster`` as its policy allows."""
        cluster = self._settings.clusters.get(request.cluster)
        if cluster is None:
            raise NotFound(f"cluster {request.cluster!r} is not served by this gateway")
        policy = select_policy(identity, request.cluster, self._policies)
        if request.mode == "direct":
            return self._issue_direct(identity, policy, request)
        lifetime = min(policy.max_session_seconds, self._settings.max_session_seconds)
        token, session = self._sessions.issue(
            identity, request.cluster, policy.name, lifetime, policy.matched_claims(identity)
        )
        expires = datetime.fromtimestamp(session.expires_at, UTC)
        return IssuedCredential(
            exec_credential=exec_credential(token, expires, request.api_version),
            mode="gateway",
            policy=policy.name,
            cluster=request.cluster,
            session_id=session.session_id,
            expires_at=expires,
        )

    def _issue_direct(
        self, identity: Identity, policy: Policy, request: TokenRequest
    ) -> IssuedCredential:
        """A real EKS token: where the policy allows direct mode, or during an approved grant."""
        grant = None
        if not policy.direct:
            grant = (
                self._direct_grants(identity, request.cluster, policy)
                if self._direct_grants
                else None
            )
            if grant is None:
                raise Forbidden(
                    f"policy {policy.name!r} does not allow direct mode, and you have no "
                    "approved direct grant open on this cluster; use the gateway (mode: gateway)"
                    " or ask for a grant (a request under a rule with approval mode: grant and "
                    "direct: true)",
                    details={"policy": policy.name},
                )
        # A grant's token is for the grant rule's own role, which can do what that rule says.
        approval, role_arn = grant if grant is not None else (None, policy.role_arn)
        cluster = self._settings.clusters[request.cluster]
        role_session = role_session_for(
            identity, role_arn, policy.name, request.cluster, purpose="direct"
        )
        credentials = self._roles.credentials(role_session)
        eks = make_eks_token(
            credentials, cluster.eks_cluster_name, cluster.region, now=self._clock()
        )
        # The token's real lifetime is reported: STS sessions last at least 15 minutes, so a
        # grant's window is when tokens can be issued, and one may outlive it by that much.
        expiration = eks.expiration
        return IssuedCredential(
            exec_credential=exec_credential(eks.token, expiration, request.api_version),
            mode="direct",
            policy=policy.name,
            cluster=request.cluster,
            session_id=None,
            expires_at=expiration,
            role_session_name=role_session.session_name,
            source_identity=role_session.source_identity,
            approval_id=approval.approval_id if approval is not None else None,
            role_arn=role_arn,
            window_ends_at=approval.window_ends_at if approval is not None else None,
        )
