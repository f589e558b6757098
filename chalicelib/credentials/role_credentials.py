"""Credentials of the IAM roles policies name, from STS AssumeRole, cached in the process.

A warm Lambda reuses them until shortly before they expire, so proxied requests do not call
STS each time. Every session carries SourceIdentity and tags derived from the caller, which
EKS and CloudTrail record, so a cluster audit log can be joined back to the eksgate session.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.credentials.eks_token import AwsCredentials
from chalicelib.errors import ServiceUnavailable
from chalicelib.identity import Identity
from chalicelib.observability import logger

SESSION_DURATION_SECONDS = 900
REFRESH_MARGIN = timedelta(minutes=5)
_NAME_CHARS = re.compile(r"[^\w+=,.@-]")
_TAG_CHARS = re.compile(r"[^\w\s.:/=+\-@]")


def sts_safe_name(text: str, limit: int = 64) -> str:
    """Make ``text`` a valid RoleSessionName/SourceIdentity: allowed chars, at most 64.

    Long names keep a hash of the whole so two different callers never collide after
    truncation.
    """
    cleaned = _NAME_CHARS.sub("-", text).strip("-") or "caller"
    if len(cleaned) < 2:
        cleaned = f"{cleaned}--"
    if len(cleaned) <= limit:
        return cleaned
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return f"{cleaned[: limit - 11]}-{digest}"


def _tag_value(text: str) -> str:
    return _TAG_CHARS.sub("_", text)[:256]


@dataclass(frozen=True)
class RoleSessionRequest:
    """Everything that identifies an assumed-role session; equal requests share credentials."""

    role_arn: str
    session_name: str
    source_identity: str
    tags: tuple[tuple[str, str], ...]


def role_session_for(
    identity: Identity, role_arn: str, policy: str, cluster: str, *, purpose: str = "gateway"
) -> RoleSessionRequest:
    """The AssumeRole parameters for ``identity`` acting under ``policy`` on ``cluster``."""
    who = identity.email or identity.subject
    return RoleSessionRequest(
        role_arn=role_arn,
        session_name=sts_safe_name(f"eksgate-{purpose}-{who}"),
        source_identity=sts_safe_name(who),
        tags=(
            ("eksgate-subject", _tag_value(identity.subject)),
            ("eksgate-issuer", _tag_value(identity.issuer)),
            ("eksgate-policy", _tag_value(policy)),
            ("eksgate-cluster", _tag_value(cluster)),
            ("eksgate-mode", purpose),
        ),
    )


class RoleCredentialCache:
    def __init__(
        self, sts_client: Any, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._sts = sts_client
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[RoleSessionRequest, AwsCredentials] = {}

    def credentials(self, request: RoleSessionRequest) -> AwsCredentials:
        """Cached credentials for ``request``, assuming the role when none are fresh enough."""
        with self._lock:
            cached = self._cache.get(request)
            if cached and cached.expiration - self._clock() > REFRESH_MARGIN:
                return cached
        fresh = self._assume(request)
        with self._lock:
            self._cache[request] = fresh
        return fresh

    def _assume(self, request: RoleSessionRequest) -> AwsCredentials:
        try:
            answer = self._sts.assume_role(
                RoleArn=request.role_arn,
                RoleSessionName=request.session_name,
                SourceIdentity=request.source_identity,
                Tags=[{"Key": k, "Value": v} for k, v in request.tags],
                DurationSeconds=SESSION_DURATION_SECONDS,
            )
        except Exception as exc:  # botocore ClientError and connection errors: fail closed
            code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
            # Role ARNs and AWS error codes are for operators (the log), not for callers.
            logger.error(
                "cannot assume the policy's role: check its trust policy allows the eksgate "
                "function with sts:SetSourceIdentity and sts:TagSession",
                extra={"role_arn": request.role_arn, "code": code},
            )
            raise ServiceUnavailable(
                "eksgate could not take on the policy's role, so nothing was sent; the "
                "gateway's log says why"
            ) from None
        creds: Mapping[str, Any] = answer["Credentials"]
        expiration = creds["Expiration"]
        if expiration.tzinfo is None:
            expiration = expiration.replace(tzinfo=UTC)
        return AwsCredentials(
            creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"], expiration
        )
