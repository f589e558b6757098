"""``GET /v1/sessions`` and ``/v1/sessions/{id}``: the audit trail, for auditors only.

The caller is authenticated as an OIDC identity in one of the auditor groups first; then the
query parameters are checked and the store asked.
"""

from __future__ import annotations

from typing import Any, Mapping

import re

from chalicelib.audit.chain import report_json, verify_chain
from chalicelib.audit.store import DECISION_EFFECTS, AuditStore
from chalicelib.errors import BadRequest, Forbidden, NotFound
from chalicelib.identity.bearer import bearer_token
from chalicelib.services import Services


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


LIST_PARAMETERS = ("identity", "cluster", "since", "until", "decision", "limit")
DEFAULT_LIMIT = 100
MAX_LIMIT = 500
# Gateway session ids are uuid4 hex; allow any id-like text, but nothing that could mislead a
# log line or a terminal.
_SESSION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def list_sessions_response(
    store: AuditStore, query_params: Mapping[str, str] | None
) -> dict[str, Any]:
    """``GET /v1/sessions``: ``{"sessions": [summary, ...]}``, most recently active first.

    Parameters: ``identity`` (a subject) or ``cluster`` (one is required), ``since`` and
    ``until`` (RFC 3339), ``decision`` (allow, approve or deny), ``limit`` (1 to 500,
    default 100). BadRequest names any parameter it does not know or cannot use.
    """
    params = dict(query_params or {})
    unknown = sorted(set(params) - set(LIST_PARAMETERS))
    if unknown:
        raise BadRequest(
            f"unknown query parameter(s): {', '.join(unknown)}; use {', '.join(LIST_PARAMETERS)}"
        )
    if not params.get("identity") and not params.get("cluster"):
        raise BadRequest("give identity or cluster")
    decision = params.get("decision") or None
    if decision is not None and decision not in DECISION_EFFECTS:
        raise BadRequest(f"decision must be one of {', '.join(DECISION_EFFECTS)}, not {decision!r}")
    summaries = store.sessions(
        subject=params.get("identity") or None,
        cluster=params.get("cluster") or None,
        since=params.get("since") or None,
        until=params.get("until") or None,
        decision=decision,
        limit=_limit(params.get("limit")),
    )
    return {"sessions": [summary.to_json_dict() for summary in summaries]}


def session_response(store: AuditStore, session_id: str) -> dict[str, Any]:
    """``GET /v1/sessions/{id}``: the session's records and the server's chain check.

    Clients that must not trust the server verify the chain themselves
    (``eksgate sessions verify``); ``chain`` is a convenience. NotFound if the session has
    no records.
    """
    if not _SESSION_ID.fullmatch(session_id or ""):
        raise BadRequest("a session id is 1 to 128 letters, digits, '.', '_', ':' or '-'")
    records = store.records(session_id)
    if not records:
        raise NotFound(
            f"no audit records for session {session_id!r} (unknown, or past the retention period)"
        )
    return {
        "session_id": session_id,
        "records": [record.to_json_dict() for record in records],
        "chain": report_json(verify_chain(session_id, records)),
    }


def _limit(text: str | None) -> int:
    if text is None or text == "":
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {text!r}")
    return int(text)
