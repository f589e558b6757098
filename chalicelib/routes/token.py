"""``POST /v1/token``: verify the caller's OIDC token, then ask the broker for a credential."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from chalicelib.audit.recorder import SessionOpening
from chalicelib.credentials.broker import IssuedCredential, parse_token_request
from chalicelib.errors import EksgateError
from chalicelib.identity import Caller, Identity
from chalicelib.identity.bearer import bearer_token
from chalicelib.observability import count, logger
from chalicelib.policy import select_policy
from chalicelib.services import Services

NO_CALLER = Caller()  # where a token request came from, when the route does not say


def issue_token(
    services: Services,
    headers: Mapping[str, str],
    body: bytes | None,
    caller: Caller = NO_CALLER,
) -> IssuedCredential:
    """The credential for this request, or an EksgateError saying why not (logged, counted).

    Every issued credential is recorded first: if the audit write fails, nothing is issued.
    """
    try:
        identity = services.verifier.verify(bearer_token(headers))
        logger.append_keys(subject=identity.subject, issuer=identity.issuer)
        request = parse_token_request(body, services.settings.max_request_body_bytes)
        issued = services.broker.issue(identity, request)
        record_issue(services, identity, issued, caller)
    except EksgateError as refusal:
        count("TokensRefused")
        logger.warning("token refused", extra={"status": refusal.status, "reason": refusal.message})
        raise
    count("TokensIssued")
    count(f"TokensIssued{issued.mode.capitalize()}")
    log: dict[str, Any] = {
        "cluster": issued.cluster,
        "mode": issued.mode,
        "policy": issued.policy,
        "session_id": issued.session_id,
        "expires_at": issued.expires_at.isoformat(),
    }
    if issued.mode == "direct":
        log.update(
            role_session_name=issued.role_session_name, source_identity=issued.source_identity
        )
    logger.info("token issued", extra=log)
    return issued


def record_issue(
    services: Services, identity: Identity, issued: IssuedCredential, caller: Caller
) -> None:
    """The token issue, in the session it opens (gateway) or a session of its own (direct)."""
    policy = select_policy(identity, issued.cluster, services.policies)
    matched = policy.matched_claims(identity)
    if issued.mode == "gateway":
        assert issued.session_id
        opening = SessionOpening(
            issued.session_id, identity, matched, issued.cluster, issued.policy
        )
        detail: dict[str, Any] = {"mode": "gateway", "expires_at": issued.expires_at.isoformat()}
        services.audit.token_issued("token_issued", opening, caller, detail)
        return
    # Direct tokens leave eksgate's view; SourceIdentity and the role session name are what
    # EKS's own audit log shows, so they are recorded to join the two.
    opening = SessionOpening(uuid.uuid4().hex, identity, matched, issued.cluster, issued.policy)
    detail = {
        "mode": "direct",
        "role_arn": issued.role_arn,
        "role_session_name": issued.role_session_name,
        "source_identity": issued.source_identity,
        "approval_id": issued.approval_id,
        "window_ends_at": issued.window_ends_at,
        "expires_at": issued.expires_at.isoformat(),
    }
    services.audit.token_issued("direct_token_issued", opening, caller, detail)
