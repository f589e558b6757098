"""One proxied request as one value: what arrived, who sent it, and what it was decided to be.

``IncomingRequest`` is what API Gateway handed us. Once the session token is verified it
becomes ``Authenticated``; ``open_exchange`` then refuses what must never reach the cluster,
resolves the request, and fixes everything later steps read (the parsed query and the query
that will be forwarded, the body's media type, the negotiated Accept, a watch's timeout) in a
frozen ``Exchange``. Every later step (decision, approval, audit, forward, masking) reads that
one value, so what was decided, what was recorded and what was forwarded cannot drift apart.

Pure: no AWS, no sockets.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from chalicelib.credentials.session_token import GatewaySession
from chalicelib.errors import (
    BadRequest,
    Forbidden,
    NotAcceptable,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from chalicelib.gateway.masked_writes import masked_fields, masked_write_refusal
from chalicelib.identity import Caller
from chalicelib.kube.request import KubeRequest, ParsedQuery, canonical_query, parse_query, resolve
from chalicelib.policy import Policy

# Time kept back to mask and return the answer inside API Gateway's 29 s.
ANSWER_MARGIN_SECONDS = 3.0
CONNECTION_SUBRESOURCES = frozenset({"exec", "attach", "portforward", "proxy"})
WRITE_VERBS = frozenset({"create", "update", "patch"})
REQUEST_BODY_TYPES = (
    "application/json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/json-patch+json",
    "application/apply-patch+yaml",
    "application/yaml",
    # kubectl 1.32+ sends protobuf for built-in kinds. Decisions are made from the URL, an
    # approval's diff from the dry run's JSON answer, our mask is looked for in the bytes,
    # and the audit trail records such bodies by size.
    "application/vnd.kubernetes.protobuf",
)


@dataclass(frozen=True)
class IncomingRequest:
    """A request as API Gateway delivered it, before anything is checked."""

    cluster: str
    method: str
    path: str  # "/api/v1/..." as received
    query: Mapping[str, Sequence[str]]
    headers: Mapping[str, str]  # lower-case names
    body: bytes | None
    remaining_seconds: float  # Lambda time left when the request arrived
    caller: Caller = Caller()
    arrived_at: float = field(default_factory=time.monotonic)
    # One Audit-ID per request, made here and nowhere else: sent upstream (kube-apiserver
    # keeps a client's Audit-ID), recorded, and echoed, so both audit logs join on it. The
    # caller's own Audit-ID header is never forwarded.
    audit_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def seconds_left(self, now: float) -> float:
        """Time left to answer, counting what waiting and dry runs already used."""
        return self.arrived_at + self.remaining_seconds - now


@dataclass(frozen=True)
class Authenticated:
    """A request whose session token verified: who sent it, under which policy."""

    incoming: IncomingRequest
    session: GatewaySession
    policy: Policy


@dataclass(frozen=True)
class GatewayLimits:
    max_request_body_bytes: int
    watch_timeout_seconds: int


@dataclass(frozen=True)
class Exchange:
    """A request as decided on. Built once by ``open_exchange``; nothing recomputes its parts."""

    incoming: IncomingRequest
    session: GatewaySession
    policy: Policy
    request: KubeRequest
    query: ParsedQuery  # as the client sent it, parsed once
    forwarded_query: str  # canonical, with the watch timeout fixed: what is recorded and sent
    approval_query: str  # canonical form of ``query``: what an approval is bound to
    media_type: str  # of the body ("" when there is none)
    accept: str  # negotiated: JSON alternatives only
    streaming: bool  # a watch or ``logs --follow``: read until the window ends
    stream_seconds: int  # how long a stream may last through the gateway

    @property
    def caller(self) -> Caller:
        return self.incoming.caller

    @property
    def body(self) -> bytes | None:
        return self.incoming.body

    @property
    def method(self) -> str:
        return self.incoming.method

    @property
    def cluster(self) -> str:
        return self.incoming.cluster

    @property
    def is_dry_run(self) -> bool:
        """The client's own dry run (kubectl diff, apply --dry-run=server) changes nothing."""
        values = self.query.get("dryRun", [])
        return bool(values) and all(v == "All" for v in values)

    @property
    def approval_method(self) -> str:
        """The method as approvals bind it: the body's media type is part of what is approved
        (the same bytes as a merge, strategic-merge or JSON patch do different things)."""
        return f"{self.method} {self.media_type}" if self.body else self.method


def open_exchange(authenticated: Authenticated, limits: GatewayLimits, now: float) -> Exchange:
    """Refuse what must never reach the cluster, resolve the request, fix its parts."""
    incoming = authenticated.incoming
    impersonation = sorted(h for h in incoming.headers if h.startswith("impersonate-"))
    if impersonation:
        raise Forbidden(
            f"impersonation ({', '.join(impersonation)}) is not allowed through "
            "eksgate: requests run as your policy's role"
        )
    query = parse_query(dict(incoming.query))
    request = resolve(incoming.method, incoming.path, query)
    if request.is_resource_request and request.verb == "":
        raise BadRequest(f"{incoming.method} is not a Kubernetes API verb for resources")
    media_type = _check_body(incoming, request, limits)
    accept = negotiate_accept(incoming.headers.get("accept", ""))
    streaming = request.verb == "watch" or _is_follow(request, query)
    forwarded = query
    if request.verb == "watch":
        timeout = _watch_timeout(query, incoming.seconds_left(now), limits.watch_timeout_seconds)
        forwarded = ParsedQuery({**query, "timeoutSeconds": [str(timeout)]})
    approval_query = canonical_query(query)
    return Exchange(
        incoming=incoming,
        session=authenticated.session,
        policy=authenticated.policy,
        request=request,
        query=query,
        forwarded_query=canonical_query(forwarded) if forwarded is not query else approval_query,
        approval_query=approval_query,
        media_type=media_type,
        accept=accept,
        streaming=streaming,
        stream_seconds=limits.watch_timeout_seconds,
    )


def body_content_type(headers: Mapping[str, str]) -> str:
    """The media type of a request body; none means JSON, as kube-apiserver assumes."""
    return headers.get("content-type", "").split(";")[0].strip().lower() or "application/json"


def negotiate_accept(accept: str) -> str:
    """Keep the JSON alternatives (with their ``as=Table`` parameters); drop protobuf.

    We must be able to read what comes back to mask it; a client that takes only protobuf is
    refused rather than sent something it did not ask for.
    """
    if not accept.strip():
        return "application/json"
    kept = []
    for alternative in accept.split(","):
        media = alternative.split(";")[0].strip().lower()
        if media in ("application/json", "*/*", "application/*", "text/plain", "text/*"):
            kept.append(alternative.strip() if media == "application/json" else media)
    if not kept:
        raise NotAcceptable(
            "eksgate returns JSON only (it inspects and masks responses); "
            "do not force protobuf (kubectl: drop --kube-api-content-type)"
        )
    if "application/json" not in [k.split(";")[0].strip().lower() for k in kept]:
        kept.append("application/json")
    return ",".join(dict.fromkeys(kept))


def _check_body(incoming: IncomingRequest, request: KubeRequest, limits: GatewayLimits) -> str:
    """The body's media type; refuses bodies too large, of a type we cannot read, or carrying
    our own mask (it would replace the live values)."""
    body = incoming.body
    if body is not None and len(body) > limits.max_request_body_bytes:
        raise PayloadTooLarge(f"request body is larger than {limits.max_request_body_bytes} bytes")
    if not body:
        return ""
    media_type = body_content_type(incoming.headers)
    if media_type not in REQUEST_BODY_TYPES:
        raise UnsupportedMediaType(
            f"request body type {media_type!r} is not accepted; eksgate "
            f"inspects bodies and takes {', '.join(REQUEST_BODY_TYPES)}"
        )
    if request.verb in WRITE_VERBS:
        fields = masked_fields(body, media_type)
        if fields:
            raise masked_write_refusal(
                fields, _kubectl_target(request), incoming.headers.get("kubectl-command", "")
            )
    return media_type


def _watch_timeout(query: Mapping[str, list[str]], seconds_left: float, window: int) -> int:
    """A watch's timeoutSeconds, capped so the answer fits the Lambda's time."""
    cap = int(min(window, seconds_left - ANSWER_MARGIN_SECONDS - 1))
    try:
        asked = int(query.get("timeoutSeconds", [str(cap)])[0])
    except ValueError:
        raise BadRequest("timeoutSeconds must be an integer") from None
    return max(1, min(asked, cap)) if asked > 0 else max(1, cap)


def _is_follow(request: KubeRequest, query: Mapping[str, Sequence[str]]) -> bool:
    return request.subresource == "log" and any(
        v.lower() in ("true", "1") for v in query.get("follow", [])
    )


def _kubectl_target(request: KubeRequest) -> str:
    """``deployments/web -n shop``, for advice that names the object."""
    target = f"{request.resource or 'RESOURCE'}/{request.name or 'NAME'}"  # kubectl takes plurals
    return target + (f" -n {request.namespace}" if request.namespace else "")
