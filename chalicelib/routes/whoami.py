"""``GET /v1/whoami``: the caller's gateway session, verified, and its policy summarised."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jwt

from chalicelib.errors import Unauthorized
from chalicelib.identity.bearer import bearer_token
from chalicelib.permissions.whoami import whoami
from chalicelib.services import Services


def whoami_response(services: Services, headers: Mapping[str, str]) -> dict[str, Any]:
    """What the session token in ``headers`` stands for; 401 unless it verifies."""
    token = bearer_token(dict(headers))
    try:
        # Only to know which cluster to verify for; verify() checks it is bound to it.
        cluster = jwt.decode(token, options={"verify_signature": False}).get("cls", "")
    except jwt.PyJWTError:
        raise Unauthorized("send your gateway session token (from `eksgate token`)") from None
    session = services.sessions.verify(token, str(cluster))
    policy = next((p for p in services.policies if p.name == session.policy), None)
    if policy is None:
        raise Unauthorized(f"policy {session.policy!r} of this session no longer exists")
    return whoami(session, policy)
