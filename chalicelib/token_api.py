"""``POST /v1/token``: verify the caller's OIDC token, then ask the broker for a credential."""

from __future__ import annotations

from typing import Any

from chalicelib.broker import IssuedCredential, parse_token_request
from chalicelib.errors import EksgateError
from chalicelib.http_responses import bearer_token
from chalicelib.observability import count, logger
from chalicelib.services import Services


def issue_token(services: Services, headers: dict, body: bytes | None) -> IssuedCredential:
    """The credential for this request, or an EksgateError saying why not (logged, counted)."""
    try:
        identity = services.verifier.verify(bearer_token(headers))
        logger.append_keys(subject=identity.subject, issuer=identity.issuer)
        request = parse_token_request(body, services.settings.max_request_body_bytes)
        issued = services.broker.issue(identity, request)
    except EksgateError as refusal:
        count("TokensRefused")
        logger.warning("token refused", extra={"status": refusal.status, "reason": refusal.message})
        raise
    count("TokensIssued")
    count(f"TokensIssued{issued.mode.capitalize()}")
    log: dict[str, Any] = {"cluster": issued.cluster, "mode": issued.mode,
                           "policy": issued.policy, "session_id": issued.session_id,
                           "expires_at": issued.expires_at.isoformat()}
    if issued.mode == "direct":
        log.update(role_session_name=issued.role_session_name,
                   source_identity=issued.source_identity)
    logger.info("token issued", extra=log)
    return issued
