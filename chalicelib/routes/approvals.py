"""``GET /v1/approvals/{id}``: where a requester's approval stands."""

from __future__ import annotations

from typing import Mapping

import jwt

from chalicelib.errors import NotFound, Unauthorized
from chalicelib.identity.bearer import bearer_token
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
        raise Unauthorized("send your gateway session token (from `eksgate token`)")
    session = services.sessions.verify(token, str(cluster))
    approval = services.approvals.get(approval_id)
    if (
        approval is None
        or approval.cluster != session.cluster
        or approval.requester_subject != session.identity.subject
        or approval.requester.get("issuer") != session.identity.issuer
    ):
        raise NotFound(f"no approval {approval_id} of yours")
    return approval.to_public_dict()
