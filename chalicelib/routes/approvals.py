"""``GET /v1/approvals/{id}``: where a requester's approval stands."""

from __future__ import annotations

from collections.abc import Mapping

import jwt

from chalicelib.errors import EksgateError, NotFound, Unauthorized
from chalicelib.identity.bearer import bearer_token
from chalicelib.kube.request import resolve
from chalicelib.policy import evaluate
from chalicelib.services import Services


def approval_status(services: Services, headers: Mapping[str, str], approval_id: str) -> dict:
    """``GET /v1/approvals/{id}`` with the requester's gateway session token.

    Only the requester sees an approval; to anyone else it does not exist (404), so ids
    cannot be probed.
    """
    token = bearer_token(dict(headers))
    try:
        cluster = jwt.decode(token, options={"verify_signature": False}).get("cls", "")
    except jwt.PyJWTError:
        raise Unauthorized("send your gateway session token (from `eksgate token`)") from None
    session = services.sessions.verify(token, str(cluster))
    approval = services.approvals.get(approval_id)
    if (
        approval is None
        or approval.cluster != session.cluster
        or approval.requester_subject != session.identity.subject
        or approval.requester.get("issuer") != session.identity.issuer
    ):
        raise NotFound(f"no approval {approval_id} of yours")
    answer = approval.to_public_dict()
    if not _may_read(services, session.policy, approval.request.get("path") or ""):
        # The diff shows the object; the requester sees only what their policy lets them read.
        answer["diff"] = DIFF_HIDDEN
    return answer


DIFF_HIDDEN = "(hidden: your policy does not let you read this object)"


def _may_read(services: Services, policy_name: str, path: str) -> bool:
    """Whether the policy allows a plain GET of the object the approval is about."""
    policy = next((p for p in services.policies if p.name == policy_name), None)
    if policy is None or not path:
        return False
    try:
        request = resolve("GET", path)
    except EksgateError:
        return False
    return evaluate(policy, request).effect == "allow"
