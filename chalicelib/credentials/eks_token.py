"""EKS bearer tokens: a presigned STS GetCallerIdentity URL, as ``aws eks get-token`` makes.

The token is ``k8s-aws-v1.`` + base64url (no padding) of a presigned
``https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-...``
URL whose signature covers the ``x-k8s-aws-id`` header (the cluster name), so a token minted
for one cluster is useless against another. aws-iam-authenticator accepts such a URL for 15
minutes after ``X-Amz-Date``; we report expiry a minute early, as the AWS CLI does.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from botocore.credentials import Credentials
from botocore.hooks import HierarchicalEmitter
from botocore.model import ServiceId
from botocore.signers import RequestSigner

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
# The URL itself is valid for 60 s (as the AWS CLI signs it); the API server accepts the
# token for 15 minutes after signing, so that is the lifetime that matters to callers.
PRESIGN_EXPIRES_SECONDS = 60
TOKEN_LIFETIME = timedelta(minutes=14)


@dataclass(frozen=True)
class AwsCredentials:
    """Temporary AWS credentials, e.g. from STS AssumeRole. Never logged."""

    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime

    def __repr__(self) -> str:  # keep secrets out of logs and tracebacks
        expiration = self.expiration.isoformat()
        return f"AwsCredentials(access_key_id={self.access_key_id[:4]}..., expiration={expiration})"


@dataclass(frozen=True)
class EksToken:
    token: str
    expiration: datetime

    def __repr__(self) -> str:
        return f"EksToken(expiration={self.expiration.isoformat()})"


def sts_host(region: str) -> str:
    return f"sts.{region}.amazonaws.com"


def make_eks_token(
    credentials: AwsCredentials, cluster_name: str, region: str, *, now: datetime | None = None
) -> EksToken:
    """Mint the bearer token EKS accepts for ``credentials`` on ``cluster_name``."""
    now = now or datetime.now(UTC)
    events = HierarchicalEmitter()  # RequestSigner holds it weakly: keep it alive here
    signer = RequestSigner(
        ServiceId("sts"),
        region,
        "sts",
        "v4",
        Credentials(
            credentials.access_key_id, credentials.secret_access_key, credentials.session_token
        ),
        events,
    )
    request = {
        "method": "GET",
        "url": f"https://{sts_host(region)}/?Action=GetCallerIdentity&Version=2011-06-15",
        "body": {},
        "headers": {CLUSTER_ID_HEADER: cluster_name},
        "context": {},
    }
    url = signer.generate_presigned_url(
        request, region_name=region, expires_in=PRESIGN_EXPIRES_SECONDS, operation_name=""
    )
    encoded = base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
    expiration = min(now + TOKEN_LIFETIME, credentials.expiration)
    return EksToken(token=TOKEN_PREFIX + encoded, expiration=expiration)


def decode_eks_token(token: str) -> str:
    """Return the presigned URL inside an EKS token; ValueError if it is not one."""
    if not token.startswith(TOKEN_PREFIX):
        raise ValueError("not an EKS token: missing k8s-aws-v1. prefix")
    body = token[len(TOKEN_PREFIX) :]
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("ascii")
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("not an EKS token: body is not base64url") from exc
