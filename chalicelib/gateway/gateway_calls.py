"""The gateway's own requests to the cluster for one client request, each under its own Audit-ID.

A write that needs approval is tried with ``dryRun=All`` and the object it names is read as it
is now, to show the approver a diff. Both reach the cluster, so each gets an Audit-ID of its
own (one request, one ID, one event in the cluster's audit log and one in eksgate's export),
derived from the client request's so an auditor can tie them together by prefix alone:
``<client Audit-ID>-dry-run`` and ``<client Audit-ID>-current-object``. kube-apiserver keeps a
client's non-empty Audit-ID as sent (``WithAuditInit``); these stay within the strictest rule
anyone states for it (at most 256 characters of letters, digits and hyphens).

Pure: no AWS, no sockets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from chalicelib.kube.request import ParsedQuery, canonical_query

if TYPE_CHECKING:  # the export reads PURPOSES without the request path's imports
    from chalicelib.gateway.exchange import Exchange

DRY_RUN = "dry-run"
CURRENT_OBJECT = "current-object"
# What each call is, in the words the trail and the exported events use.
PURPOSES = {
    DRY_RUN: "the request with dryRun=All, for the approver's diff: it changes nothing",
    CURRENT_OBJECT: "a read of the object as it is now, for the approver's diff",
}


@dataclass(frozen=True)
class GatewayCall:
    """One request the gateway itself sends to the cluster while handling a client request."""

    purpose: str  # DRY_RUN or CURRENT_OBJECT
    method: str
    verb: str  # the Kubernetes verb the cluster sees
    query: str  # canonical, exactly as sent
    body: bytes | None
    audit_id: str  # this call's own Audit-ID
    for_audit_id: str  # the client request it serves


def gateway_audit_id(client_audit_id: str, purpose: str) -> str:
    """The Audit-ID of the gateway's own call for a client request (its ID, a hyphen, the
    purpose)."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown gateway call purpose {purpose!r}")
    return f"{client_audit_id}-{purpose}"


def dry_run_call(exchange: Exchange) -> GatewayCall:
    """The client's write with ``dryRun=All``: what it would do, with nothing changed."""
    audit_id = exchange.incoming.audit_id
    return GatewayCall(
        purpose=DRY_RUN,
        method=exchange.method,
        verb=exchange.request.verb,
        query=canonical_query(ParsedQuery({**exchange.query, "dryRun": ["All"]})),
        body=exchange.body,
        audit_id=gateway_audit_id(audit_id, DRY_RUN),
        for_audit_id=audit_id,
    )


def current_object_call(exchange: Exchange) -> GatewayCall:
    """A GET of the object the client's write names, as it is now."""
    audit_id = exchange.incoming.audit_id
    return GatewayCall(
        purpose=CURRENT_OBJECT,
        method="GET",
        verb="get",
        query="",
        body=None,
        audit_id=gateway_audit_id(audit_id, CURRENT_OBJECT),
        for_audit_id=audit_id,
    )
