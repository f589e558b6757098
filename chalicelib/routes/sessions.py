"""``GET /v1/sessions`` and ``/v1/sessions/{id}``: the audit trail, for auditors only.

The caller is authenticated as an OIDC identity in one of the auditor groups first; then the
query parameters are checked and the store asked.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.audit.anchor_store import list_anchors
from chalicelib.audit.anchors import Anchor
from chalicelib.audit.chain import report_json, verify_chain
from chalicelib.audit.store import DECISION_EFFECTS, AuditStore
from chalicelib.errors import BadRequest, Forbidden, NotFound, ServiceUnavailable
from chalicelib.identity.bearer import bearer_token
from chalicelib.observability import logger
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
    """``GET /v1/sessions/{id}``: every record of one session and its anchors, for auditors."""
    _auditor(services, headers)
    return session_response(
        services.audit_store, session_id, s3_anchor_reader(services.settings.region)
    )


# The anchors of one session, or None when this deployment keeps none.
AnchorReader = Callable[[str], "list[Anchor] | None"]


def s3_anchor_reader(region: str, bucket: str | None = None) -> AnchorReader:
    """Anchors from the stage's Object Lock bucket (EKSGATE_ANCHOR_BUCKET), read by the
    function, so auditors need no S3 rights. ServiceUnavailable if the bucket cannot be read:
    records without their anchors would look merely unanchored."""
    bucket = bucket if bucket is not None else os.environ.get("EKSGATE_ANCHOR_BUCKET", "")

    def read(session_id: str) -> list[Anchor] | None:
        if not bucket:
            return None
        try:
            return list_anchors(_s3_client(region), bucket, session_id)
        except (ClientError, BotoCoreError) as exc:
            logger.warning("audit anchors unreadable", extra={"cause": repr(exc)})
            raise ServiceUnavailable("the audit anchors could not be read; try again") from exc

    return read


@lru_cache(maxsize=4)
def _s3_client(region: str) -> Any:
    import boto3

    return boto3.session.Session(region_name=region).client("s3")


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


def session_response(
    store: AuditStore, session_id: str, anchors: AnchorReader = lambda _: None
) -> dict[str, Any]:
    """``GET /v1/sessions/{id}``: the session's records, its anchors and the server's check.

    ``anchors`` is the list of ``{"seq", "hash", "anchored_at"}`` kept outside the table
    (null when this deployment keeps none). Clients that must not trust the server verify
    the chain and the anchors themselves (``eksgate sessions verify``); ``chain`` is a
    convenience. NotFound if the session has neither records nor anchors.
    """
    if not _SESSION_ID.fullmatch(session_id or ""):
        raise BadRequest("a session id is 1 to 128 letters, digits, '.', '_', ':' or '-'")
    records = store.records(session_id)
    kept = anchors(session_id)
    # A session whose every record was deleted still has its anchors: show them, so verify
    # reports the deletion instead of "unknown session".
    if not records and not kept:
        raise NotFound(
            f"no audit records for session {session_id!r} (unknown, or past the retention period)"
        )
    return {
        "session_id": session_id,
        "records": [record.to_json_dict() for record in records],
        "anchors": None if kept is None else [anchor.to_json_dict() for anchor in kept],
        "chain": report_json(verify_chain(session_id, records)),
    }


def _limit(text: str | None) -> int:
    if text is None or text == "":
        return DEFAULT_LIMIT
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_LIMIT}, not {text!r}")
    return int(text)
