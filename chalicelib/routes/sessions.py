"""Read routes: an approval's status for its requester, the audit trail for auditors."""

from __future__ import annotations

from typing import Any, Mapping

import jwt

from chalicelib.audit.api import list_sessions_response, session_response
from chalicelib.errors import Forbidden, NotFound, Unauthorized
from chalicelib.routes.responses import bearer_token
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


def _auditor(services: Services, headers: Mapping[str, str]) -> None:
    identity = services.verifier.verify(bearer_token(dict(headers)))
    groups = set(services.settings.auditor_groups)
    if not groups or not groups.intersection(identity.groups):
        raise Forbidden(
            f"{identity.describe()} is not in an auditor group "
            f"({', '.join(sorted(groups)) or 'none configured'})"
        )


def sessions_list(
    services: Services, headers: Mapping[str, str], query: Mapping[str, str] | None
) -> dict[str, Any]:
    """``GET /v1/sessions``: for an OIDC identity in one of the configured auditor groups."""
    _auditor(services, headers)
    return list_sessions_response(services.audit_store, query)


def session_detail(services: Services, headers: Mapping[str, str], session_id: str) -> dict:
    """``GET /v1/sessions/{id}``: every record of one session, for auditors."""
    _auditor(services, headers)
    return session_response(services.audit_store, session_id)
