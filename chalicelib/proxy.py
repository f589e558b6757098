"""The Kubernetes API proxy: authenticate, resolve, decide, forward, mask.

Every step fails closed with a Kubernetes ``Status``. The request is resolved once, and the
exact path and canonical query that were decided on are what is forwarded.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from chalicelib.approval_gate import ApprovalGate, DryRunRefused
from chalicelib.clusters import ClusterDirectory
from chalicelib.eks_token import AwsCredentials, EksToken, make_eks_token
from chalicelib.errors import (
    BadGateway,
    BadRequest,
    EksgateError,
    Forbidden,
    NotAcceptable,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
)
from chalicelib.http_responses import bearer_token
from chalicelib.kube_status import status_body
from chalicelib.kube_request import KubeRequest, canonical_query, is_discovery, parse_query, resolve
from chalicelib.masking import MaskingSettings, mask_document, mask_text, mask_watch_stream
from chalicelib.policy import Decision, Policy, evaluate
from chalicelib.policy.engine import describe_request
from chalicelib.role_credentials import RoleCredentialCache, role_session_for
from chalicelib.session_audit import Caller, GatewayAudit
from chalicelib.session_token import GatewaySession, SessionTokenCodec
from chalicelib.upstream import Upstream, UpstreamRequest, UpstreamResponse

# Lambda's synchronous response limit is 6 MB for the whole JSON envelope; the body is a JSON
# string inside it, so we measure the encoded size and keep headroom for headers.
MAX_RESPONSE_PAYLOAD = 6 * 1024 * 1024 - 64 * 1024
MAX_UPSTREAM_BYTES = 16 * 1024 * 1024
EKS_TOKEN_REUSE_MARGIN = timedelta(minutes=5)
FORWARD_BUDGET_SECONDS = 12.0
ANSWER_MARGIN_SECONDS = 3.0
CONNECTION_SUBRESOURCES = frozenset({"exec", "attach", "portforward", "proxy"})
REQUEST_BODY_TYPES = (
    "application/json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/json-patch+json",
    "application/apply-patch+yaml",
    "application/yaml",
)
# Only these request headers reach the cluster; Authorization, Cookie, Impersonate-*,
# hop-by-hop headers and anything else the caller sent are dropped.
FORWARDED_HEADERS = ("content-type", "user-agent", "kubectl-command", "kubectl-session")


@dataclass(frozen=True)
class ProxyResponse:
    status: int
    content_type: str
    body: str
    headers: Mapping[str, str]


@dataclass(frozen=True)
class IncomingRequest:
    cluster: str
    method: str
    path: str  # "/api/v1/..." as received
    query: Mapping[str, Sequence[str]]
    headers: Mapping[str, str]  # lower-case names
    body: bytes | None
    remaining_seconds: float  # Lambda time left when the request arrived
    arrived_at: float = field(default_factory=time.monotonic)

    def seconds_left(self, now: float) -> float:
        """Time left to answer, counting what waiting and dry runs already used."""
        return self.arrived_at + self.remaining_seconds - now


class Gateway:
    def __init__(
        self,
        *,
        sessions: SessionTokenCodec,
        policies: Sequence[Policy],
        clusters: ClusterDirectory,
        role_credentials: RoleCredentialCache,
        upstream: Upstream,
        audit: GatewayAudit,
        approvals: ApprovalGate | None,
        max_request_body_bytes: int,
        watch_timeout_seconds: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self._policies = {p.name: p for p in policies}
        self._clusters = clusters
        self._roles = role_credentials
        self._upstream = upstream
        self._audit = audit
        self._approvals = approvals
        self._max_body = max_request_body_bytes
        self._watch_timeout = watch_timeout_seconds
        self._clock = clock
        self._eks_tokens: dict[tuple[str, str, str], EksToken] = {}

    # ---- the steps, in order ----------------------------------------------------------------

    def authenticate(self, incoming: IncomingRequest) -> tuple[GatewaySession, Policy]:
        token = bearer_token(dict(incoming.headers))
        if not token:
            raise Unauthorized(
                "missing gateway session token: configure kubectl with "
                "`eksgate kubeconfig` (it runs `eksgate token`)"
            )
        session = self._sessions.verify(token, incoming.cluster)
        policy = self._policies.get(session.policy)
        if policy is None:
            raise Unauthorized(
                f"policy {session.policy!r} of this session no longer exists; get a new token"
            )
        return session, policy

    def inspect(self, incoming: IncomingRequest) -> KubeRequest:
        """Refuse what must never reach the cluster, then resolve the request."""
        impersonation = sorted(h for h in incoming.headers if h.startswith("impersonate-"))
        if impersonation:
            raise Forbidden(
                f"impersonation ({', '.join(impersonation)}) is not allowed through "
                "eksgate: requests run as your policy's role"
            )
        request = resolve(incoming.method, incoming.path, dict(incoming.query))
        if request.is_resource_request and request.verb == "":
            raise BadRequest(f"{incoming.method} is not a Kubernetes API verb for resources")
        if incoming.body is not None and len(incoming.body) > self._max_body:
            raise PayloadTooLarge(f"request body is larger than {self._max_body} bytes")
        if incoming.body:
            content_type = body_content_type(incoming.headers)
            if content_type not in REQUEST_BODY_TYPES:
                raise UnsupportedMediaType(
                    f"request body type {content_type!r} is not accepted; eksgate "
                    f"inspects bodies and takes {', '.join(REQUEST_BODY_TYPES)}"
                )
        negotiate_accept(incoming.headers.get("accept", ""))  # refuse protobuf-only clients now
        return request

    def decide(self, policy: Policy, request: KubeRequest) -> Decision:
        if not request.is_resource_request and is_discovery(request):
            return Decision("allow", policy.name, None, "discovery is open to every session")
        return evaluate(policy, request)

    def send(
        self,
        incoming: IncomingRequest,
        session: GatewaySession,
        policy: Policy,
        request: KubeRequest,
        *,
        method: str | None = None,
        extra_query: Mapping[str, list[str]] | None = None,
        body: bytes | None = None,
        use_body: bool = True,
    ) -> UpstreamResponse:
        """Send ``request`` to the cluster as the policy's role; the answer is not masked yet."""
        cluster = self._clusters.endpoint(incoming.cluster)
        credentials = self._roles.credentials(
            role_session_for(session.identity, policy.role_arn, policy.name, incoming.cluster)
        )
        eks = self._eks_token(credentials, cluster.config.eks_cluster_name, cluster.config.region)
        streaming = request.verb == "watch" or _is_follow(request, incoming.query)
        query = {**self.forwarded_query(incoming, request), **(extra_query or {})}
        path_and_query = request.path + (f"?{canonical_query(query)}" if query else "")
        payload = (body if body is not None else incoming.body) if use_body else None
        headers = {
            name: incoming.headers[name]
            for name in FORWARDED_HEADERS
            if name in incoming.headers and (payload or name != "content-type")
        }
        if payload:
            headers["content-type"] = incoming.headers.get("content-type") or "application/json"
        headers.update(
            {
                "authorization": f"Bearer {eks.token}",
                "accept": negotiate_accept(incoming.headers.get("accept", "")),
                "accept-encoding": "gzip",
            }
        )
        now = self._clock()
        deadline = now + max(1.0, incoming.seconds_left(now) - ANSWER_MARGIN_SECONDS)
        if streaming:
            # Watches and `logs --follow` end here so clients see a clean end and reconnect.
            deadline = min(deadline, self._clock() + self._watch_timeout + 2)
        return self._upstream.send(
            cluster,
            UpstreamRequest(
                method or incoming.method,
                path_and_query,
                headers,
                payload or None,
                streaming,
                deadline,
            ),
            MAX_UPSTREAM_BYTES,
        )

    def _eks_token(self, credentials: AwsCredentials, eks_name: str, region: str) -> EksToken:
        """An EKS token for these credentials, reused while it has minutes left (a presign
        per request would be wasted work on the hot path)."""
        key = (credentials.access_key_id, eks_name, region)
        cached = self._eks_tokens.get(key)
        now = datetime.now(timezone.utc)
        if cached is None or cached.expiration - now < EKS_TOKEN_REUSE_MARGIN:
            cached = make_eks_token(credentials, eks_name, region, now=now)
            self._eks_tokens[key] = cached
        return cached

    def forwarded_query(
        self, incoming: IncomingRequest, request: KubeRequest
    ) -> dict[str, list[str]]:
        """The query as decided on; a watch's timeoutSeconds capped to fit the Lambda."""
        query = dict(parse_query(dict(incoming.query)))
        if request.verb == "watch":
            query["timeoutSeconds"] = [str(self._bounded_timeout(query, incoming))]
        return query

    def _bounded_timeout(self, query: Mapping[str, list[str]], incoming: IncomingRequest) -> int:
        """A watch's timeoutSeconds, capped so the answer fits the Lambda's time."""
        left = incoming.seconds_left(self._clock())
        cap = int(min(self._watch_timeout, left - ANSWER_MARGIN_SECONDS - 1))
        try:
            asked = int(query.get("timeoutSeconds", [str(cap)])[0])
        except ValueError:
            raise BadRequest("timeoutSeconds must be an integer")
        return max(1, min(asked, cap)) if asked > 0 else max(1, cap)

    def _clear_approval(
        self,
        incoming: IncomingRequest,
        session: GatewaySession,
        policy: Policy,
        decision: Decision,
        request: KubeRequest,
        caller: Caller,
    ) -> str:
        if self._approvals is None:
            raise Forbidden(
                f"eksgate: approval required ({decision.reason}), but approvals are "
                "not configured on this gateway"
            )
        query = canonical_query(incoming.query)

        def dry_run() -> UpstreamResponse:
            return self.send(incoming, session, policy, request, extra_query={"dryRun": ["All"]})

        def current() -> Any:
            answer = self.send(incoming, session, policy, request, method="GET", use_body=False)
            return json.loads(answer.body) if answer.status == 200 and answer.body else None

        approval = self._approvals.clear(
            session=session,
            caller=caller,
            decision=decision,
            request=request,
            # The body's media type is part of what is approved: the same bytes as a merge,
            # strategic-merge or JSON patch do different things.
            method=f"{incoming.method} {body_content_type(incoming.headers)}"
            if incoming.body
            else incoming.method,
            query=query,
            body=incoming.body,
            masking=policy.masking,
            dry_run=None if request.subresource in CONNECTION_SUBRESOURCES else dry_run,
            current=current,
            # Leave time to forward and answer after waiting, inside API Gateway's 29 s.
            max_wait=incoming.seconds_left(self._clock()) - FORWARD_BUDGET_SECONDS,
        )
        return approval.approval_id

    # ---- the whole request ------------------------------------------------------------------

    def handle(self, incoming: IncomingRequest, caller: Caller = Caller()) -> ProxyResponse:
        session, policy = self.authenticate(incoming)
        request: KubeRequest | None = None
        decision: Decision | None = None
        approval_id: str | None = None
        try:
            request = self.inspect(incoming)
            decision = self.decide(policy, request)
            direct_grant = decision.effect == "approve" and bool(
                decision.rule and decision.rule.approval and decision.rule.approval.direct
            )
            # What the platform cannot carry is explained first, whatever the policy says,
            # except under a direct-grant rule, whose approval is what the caller needs.
            limit = None if direct_grant else _platform_limit(request, incoming.headers)
            if limit:
                raise limit
            if decision.effect == "deny":
                raise Forbidden(
                    f"eksgate: {decision.reason}",
                    details={"policy": decision.policy, "rule": decision.rule_label},
                )
            # A client's own dry run (kubectl diff, apply --dry-run=server) changes nothing:
            # it goes through as the gateway's own dry run would, without asking anyone.
            if decision.effect == "approve" and not _is_dry_run(incoming.query):
                approval_id = self._clear_approval(
                    incoming, session, policy, decision, request, caller
                )
            limit = _platform_limit(request, incoming.headers, approval_id)
            if limit:
                raise limit
        except (DryRunRefused, EksgateError) as stopped:
            dry_run = stopped.response if isinstance(stopped, DryRunRefused) else None
            refusal = (
                BadRequest(f"dry run refused with HTTP {dry_run.status}") if dry_run else stopped
            )
            assert isinstance(refusal, EksgateError)
            self._audit.refusal(
                session,
                caller,
                incoming.method,
                incoming.path,
                request,
                decision,
                refusal,
                approval_id,
            )
            if dry_run is None:
                raise
            # The cluster's own answer to the dry run goes back (masked); no one was asked.
            assert request is not None
            return _masked_response(dry_run, request, policy.masking)
        query = canonical_query(self.forwarded_query(incoming, request))
        # No record, no forward: AuditUnavailable (503) stops here.
        self._audit.request(
            session,
            caller,
            incoming.method,
            query,
            request,
            decision,
            approval_id,
            incoming.body,
            policy.masking,
        )
        started = self._clock()
        try:
            answer = self.send(incoming, session, policy, request)
            result = _masked_response(answer, request, policy.masking)
        except Exception as exc:  # recorded whatever it was: the request may have taken effect
            failure = (
                exc
                if isinstance(exc, EksgateError)
                else BadGateway("the cluster's answer could not be processed; withheld")
            )
            self._audit.response(
                session,
                caller,
                incoming.method,
                query,
                request,
                None,
                (self._clock() - started) * 1000,
                None,
                failure.message,
            )
            raise failure from exc
        # No record, no answer: the cluster's reply is withheld if it cannot be recorded.
        self._audit.response(
            session,
            caller,
            incoming.method,
            query,
            request,
            result.status,
            (self._clock() - started) * 1000,
            result.body,
        )
        return result


def body_content_type(headers: Mapping[str, str]) -> str:
    """The media type of a request body; none means JSON, as kube-apiserver assumes."""
    return headers.get("content-type", "").split(";")[0].strip().lower() or "application/json"


def _is_dry_run(query: Mapping[str, Sequence[str]]) -> bool:
    values = parse_query(dict(query)).get("dryRun", [])
    return bool(values) and all(v == "All" for v in values)


def _is_follow(request: KubeRequest, query: Mapping[str, Sequence[str]]) -> bool:
    return request.subresource == "log" and any(
        v.lower() in ("true", "1") for v in query.get("follow", [])
    )


def _platform_limit(
    request: KubeRequest, headers: Mapping[str, str], approval_id: str | None = None
) -> EksgateError | None:
    """What API Gateway + Lambda cannot carry, refused with what to do instead."""
    wants_upgrade = "upgrade" in headers or "upgrade" in headers.get("connection", "").lower()
    blocked = (
        request.subresource
        if request.subresource in CONNECTION_SUBRESOURCES
        else ("proxy" if request.verb == "proxy" else "")
    )
    if not blocked and not wants_upgrade:
        return None
    if approval_id:
        return Forbidden(
            f"your grant {approval_id} is approved, but {blocked or 'a connection upgrade'} "
            "cannot pass through the gateway (API Gateway and Lambda carry no streaming "
            "connections): get a direct EKS token for the window with `eksgate token --mode "
            "direct`, and use it with the cluster's own endpoint",
            details={"name": approval_id, "kind": "approval"},
        )
    return Forbidden(
        f"{blocked or 'connection upgrades'} cannot pass through the eksgate gateway: API "
        "Gateway and Lambda carry no streaming connections (exec, attach, port-forward, cp, "
        "proxy). For a command, use `eksgate exec [-n NS] [-c C] POD -- CMD ARGS...` (or "
        "`kubectl eksgate exec ...`): decided, masked and recorded by the gateway. Otherwise "
        "use an approved direct grant: a rule with approval mode: grant and "
        "direct: true lets `eksgate token --mode direct` issue an EKS token during the "
        "approved window",
        details={"subresource": blocked or "upgrade"},
    )


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


def _masked_response(
    answer: UpstreamResponse, request: KubeRequest, settings: MaskingSettings
) -> ProxyResponse:
    if answer.truncated:
        raise PayloadTooLarge(
            f"the answer to {describe_request(request)} is larger than the gateway can return "
            "(Lambda's 6 MB limit); ask for pages: kubectl --chunk-size=100, or ?limit=100 "
            "with continue"
        )
    content_type = answer.headers.get("content-type", "application/json")
    media = content_type.split(";")[0].strip().lower()
    body = answer.body
    if answer.cut_at_deadline and b"\n" in body:
        body = body[: body.rfind(b"\n") + 1]  # never a half event or half line
    if media == "application/json":
        if request.verb == "watch":
            text = mask_watch_stream(body, settings).decode("utf-8")
        else:
            try:
                document = json.loads(body) if body.strip() else None
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise BadGateway("the cluster answered with malformed JSON; withheld")
            text = (
                ""
                if document is None
                else json.dumps(mask_document(document, settings), separators=(",", ":"))
            )
    elif media.startswith("text/"):
        text = mask_text(body.decode("utf-8", errors="replace"), settings)
    else:
        raise BadGateway(
            f"the cluster answered with {media!r}, which eksgate cannot inspect; withheld"
        )
    if len(json.dumps(text)) > MAX_RESPONSE_PAYLOAD:
        raise PayloadTooLarge(
            f"the answer to {describe_request(request)} is larger than the gateway can return "
            "(Lambda's 6 MB limit); ask for pages: kubectl --chunk-size=100, or ?limit=100 "
            "with continue"
        )
    headers = {"cache-control": "no-store"}
    for name in ("audit-id", "warning", "x-kubernetes-pf-flowschema-uid"):
        if name in answer.headers:
            # Admission webhooks may echo field values in warnings: mask them like bodies.
            headers[name] = mask_text(answer.headers[name], settings)
    return ProxyResponse(answer.status, content_type, text, headers)


def status_response(error: EksgateError) -> ProxyResponse:
    return ProxyResponse(
        error.status,
        "application/json",
        json.dumps(status_body(error)),
        {"cache-control": "no-store"},
    )


def incoming_from(
    cluster: str,
    method: str,
    proxy_path: str,
    query: Mapping[str, list[str]],
    headers: Mapping[str, str],
    body: bytes | None,
    remaining_seconds: float,
) -> IncomingRequest:
    return IncomingRequest(
        cluster=cluster,
        method=method,
        path="/" + proxy_path,
        query=query,
        headers={k.lower(): v for k, v in headers.items()},
        body=body,
        remaining_seconds=remaining_seconds,
    )


def status_for_exception(exc: BaseException) -> EksgateError:
    """Anything unexpected is a 500 Status without details (the log has them)."""
    if isinstance(exc, EksgateError):
        return exc
    return EksgateError("internal error in the eksgate gateway; the request was not forwarded")
