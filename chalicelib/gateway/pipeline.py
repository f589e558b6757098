"""The Kubernetes API proxy: authenticate, inspect, decide, clear, record, forward, mask.

``Gateway.handle`` reads as the design's steps, one call each, over one ``Exchange`` value
built once (``gateway/exchange.py``). Every step fails closed with a Kubernetes ``Status``;
the path and query that were decided on are what is recorded and what is forwarded.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import jwt

from chalicelib.approvals.gate import (
    MUTATING_VERBS,
    ApprovalGate,
    DryRunRefused,
    NoChange,
    proposed_change,
)
from chalicelib.approvals.model import Approval
from chalicelib.audit.recorder import GatewayAudit, Outcome
from chalicelib.audit.store import AuditUnavailable
from chalicelib.credentials.session_token import SessionTokenCodec
from chalicelib.errors import (
    AnswerWithheld,
    BadGateway,
    BadRequest,
    EksgateError,
    Forbidden,
    Unauthorized,
    UnknownCluster,
)
from chalicelib.gateway.answers import ProxyResponse, masked_response
from chalicelib.gateway.exchange import (
    CONNECTION_SUBRESOURCES,
    Authenticated,
    Exchange,
    GatewayLimits,
    IncomingRequest,
    open_exchange,
)
from chalicelib.gateway.forward import Forwarder
from chalicelib.gateway.gateway_calls import GatewayCall, current_object_call, dry_run_call
from chalicelib.gateway.upstream import UpstreamResponse
from chalicelib.identity.bearer import bearer_token
from chalicelib.permissions.access_review import answer_self_review, is_self_review
from chalicelib.permissions.whoami import identity_review, is_identity_review
from chalicelib.policy import Decision, Policy
from chalicelib.policy.engine import decide_request

# Time kept back after waiting for an approval, to forward and answer inside the 29 s.
FORWARD_BUDGET_SECONDS = 12.0
RENEWAL_HINT = (
    "The next kubectl command renews the session (or run `eksgate token --force-refresh`, or "
    "`eksgate cache clear`)"
)
SELF_REVIEW_NOTE = "answered from the eksgate policy, not forwarded"
NO_CHANGE_WARNING = (
    "eksgate: this write would change nothing (its dry run equals the live object), so it was "
    "not sent and needed no approval"
)


class Gateway:
    def __init__(
        self,
        sessions: SessionTokenCodec,
        policies: Sequence[Policy],
        forwarder: Forwarder,
        audit: GatewayAudit,
        approvals: ApprovalGate | None,
        limits: GatewayLimits,
    ) -> None:
        self._sessions = sessions
        self._policies = {p.name: p for p in policies}
        self._forward = forwarder
        self._audit = audit
        self._approvals = approvals
        self._limits = limits
        self._clock: Callable[[], float] = time.monotonic

    def handle(self, incoming: IncomingRequest) -> ProxyResponse:
        authenticated = self.authenticate(incoming)
        exchange: Exchange | None = None
        decision: Decision | None = None
        try:
            exchange = open_exchange(authenticated, self._limits, self._clock())
            if is_self_review(exchange.request):
                return self._answer_self_review(exchange)  # kubectl auth can-i
            if is_identity_review(exchange.request):
                return self._answer_identity_review(exchange)  # kubectl auth whoami
            decision = self.decide(exchange)
            approval = self.clear(exchange, decision)
        except NoChange as unchanged:
            assert exchange is not None
            return self._answer_unchanged(exchange, unchanged)
        except DryRunRefused as refused:
            assert exchange is not None
            return self._answer_refused_dry_run(authenticated, exchange, decision, refused)
        except EksgateError as refusal:
            approval_id = refusal.details.get("approval_id")
            self._audit.refusal(authenticated, exchange, decision, refusal, approval_id)
            raise
        assert exchange is not None and decision is not None
        try:
            return self.forward(exchange, decision, approval)
        except EksgateError as failure:
            if approval is not None and failure.nothing_sent and self._approvals is not None:
                self._approvals.give_back(exchange, approval)  # a human need not ask twice
            raise

    # ---- the steps, in order ----------------------------------------------------------------

    def authenticate(self, incoming: IncomingRequest) -> Authenticated:
        token = bearer_token(incoming.headers)
        if not token:
            raise Unauthorized(
                "missing gateway session token: configure kubectl with "
                "`eksgate kubeconfig` (it runs `eksgate token`)"
            )
        if incoming.cluster not in self._forward.cluster_names():
            raise self._unknown_cluster(token, incoming.cluster)
        try:
            session = self._sessions.verify(token, incoming.cluster)
        except Unauthorized as rejected:
            # Always a 401: client-go runs the exec plugin again only after one.
            raise Unauthorized(f"{rejected.message}. {RENEWAL_HINT}") from None
        policy = self._policies.get(session.policy)
        if policy is None:
            raise Unauthorized(
                f"policy {session.policy!r} of this session no longer exists. {RENEWAL_HINT}"
            )
        return Authenticated(incoming, session, policy)

    def _unknown_cluster(self, token: str, cluster: str) -> UnknownCluster:
        """A 404 for a cluster path this gateway does not serve (a typo, most likely), naming
        the clusters the caller may use when their token proves who they are. A 401 here
        would send kubectl into re-login loops that hide the real reason."""
        try:
            claimed = str(jwt.decode(token, options={"verify_signature": False}).get("cls", ""))
            session = self._sessions.verify(token, claimed)
        except (jwt.PyJWTError, EksgateError):
            return UnknownCluster(
                f"eksgate serves no cluster {cluster!r} (check the path /k8s/<cluster>)"
            )
        policy = self._policies.get(session.policy)
        usable = [
            name
            for name in self._forward.cluster_names()
            if policy is not None and policy.applies_to_cluster(name)
        ]
        return UnknownCluster(
            f"eksgate serves no cluster {cluster!r}; your session is for cluster "
            f"{session.cluster!r}, and your policy may use: {', '.join(usable) or 'none'}",
            details={"name": cluster, "kind": "cluster"},
        )

    def decide(self, exchange: Exchange) -> Decision:
        return decide_request(exchange.policy, exchange.request)

    def clear(self, exchange: Exchange, decision: Decision) -> Approval | None:
        """Whether this exchange may go: None (allowed), the approval it goes under, or a
        refusal."""
        rule = decision.rule
        direct_grant = decision.effect == "approve" and bool(
            rule and rule.approval and rule.approval.direct
        )
        # What the platform cannot carry is explained first, whatever the policy says,
        # except under a direct-grant rule, whose approval is what the caller needs.
        if not direct_grant:
            _refuse_platform_limits(exchange, None, decision)
        if decision.effect == "deny":
            raise Forbidden(
                f"eksgate: {decision.reason}",
                details={"policy": decision.policy, "rule": decision.rule_label},
            )
        approval = None
        # A client's own dry run (kubectl diff, apply --dry-run=server) changes nothing:
        # it goes through as the gateway's own dry run would, without asking anyone.
        if decision.effect == "approve" and not exchange.is_dry_run:
            approval = self._clear_approval(exchange, decision)
        _refuse_platform_limits(exchange, approval.approval_id if approval else None, decision)
        return approval

    def forward(
        self, exchange: Exchange, decision: Decision, approval: Approval | None
    ) -> ProxyResponse:
        """Record, send as the policy's role, mask, record the answer. Every failure says
        truthfully whether the request may have reached the cluster."""
        try:
            self._audit.request(exchange, decision, approval.approval_id if approval else None)
        except EksgateError as unrecorded:
            unrecorded.nothing_sent = True  # no record, no forward
            raise
        started = self._clock()
        try:
            answer = self._forward.send(exchange)
            result = masked_response(answer, exchange.request, exchange.policy.masking)
        except Exception as exc:  # recorded whatever it was: the request may have taken effect
            failure = _truthful_failure(exc, exchange)
            elapsed = (self._clock() - started) * 1000
            outcome = Outcome(None, elapsed, None, error=failure.message)
            self._record_outcome(exchange, outcome, failure)
            raise failure from exc
        # No record, no answer: the cluster's reply is withheld if it cannot be recorded.
        elapsed = (self._clock() - started) * 1000
        self._record_outcome(exchange, Outcome(result.status, elapsed, result.body), None)
        if exchange.streaming:
            # The stream ends with the gateway's window, not the user's Ctrl-C: say so.
            return result.with_warning(
                f"eksgate: this stream ends after {exchange.stream_seconds} s (API Gateway's "
                "limit) and arrives in one piece when it ends; run the command again to continue"
            )
        return result

    def _record_outcome(
        self, exchange: Exchange, outcome: Outcome, failure: EksgateError | None
    ) -> None:
        try:
            self._audit.response(exchange, outcome)
        except AuditUnavailable as unrecorded:
            raise _answer_withheld(exchange, outcome, failure) from unrecorded

    # ---- approvals --------------------------------------------------------------------------

    def _clear_approval(self, exchange: Exchange, decision: Decision) -> Approval:
        if self._approvals is None:
            raise Forbidden(
                f"eksgate: approval required ({decision.reason}), but approvals are "
                "not configured on this gateway"
            )
        usable = self._approvals.find(exchange, decision)
        if usable:
            return usable
        diff = self._proposed_change(exchange, decision)
        # Leave time to forward and answer after waiting, inside API Gateway's 29 s.
        max_wait = exchange.incoming.seconds_left(self._clock()) - FORWARD_BUDGET_SECONDS
        return self._approvals.ask(exchange, decision, diff, max_wait)

    def _proposed_change(self, exchange: Exchange, decision: Decision) -> str:
        """The dry run and the current object, as the approver's diff (or NoChange, or
        DryRunRefused: see ``approvals.gate.proposed_change``)."""
        request = exchange.request
        if request.verb not in MUTATING_VERBS or request.subresource in CONNECTION_SUBRESOURCES:
            return ""
        dry_run = self._gateway_call(exchange, decision, dry_run_call(exchange))
        current: Any = None
        if request.name and dry_run.status < 400:
            answer = self._gateway_call(exchange, decision, current_object_call(exchange))
            current = json.loads(answer.body) if answer.status == 200 and answer.body else None
        return proposed_change(request, dry_run, current, exchange.policy.masking)

    def _gateway_call(
        self, exchange: Exchange, decision: Decision, call: GatewayCall
    ) -> UpstreamResponse:
        """One of the gateway's own requests, under its own Audit-ID, recorded before it is
        sent (no record, no forward) and with the cluster's answer."""
        self._audit.gateway_request(exchange, decision, call)
        started = self._clock()
        try:
            answer = self._forward.send_gateway_call(exchange, call)
        except EksgateError as failure:
            elapsed = (self._clock() - started) * 1000
            outcome = Outcome(None, elapsed, None, error=failure.message)
            self._audit.gateway_response(exchange, call, outcome)
            raise
        elapsed = (self._clock() - started) * 1000
        self._audit.gateway_response(exchange, call, Outcome(answer.status, elapsed, None))
        return answer

    def _answer_self_review(self, exchange: Exchange) -> ProxyResponse:
        """``kubectl auth can-i`` is answered from the eksgate policy, not forwarded: the
        cluster would answer for the policy's role, which is broader than what the gateway
        lets through."""
        review = answer_self_review(
            exchange.policy, exchange.request, exchange.body or b"", exchange.media_type
        )
        body = json.dumps(review, separators=(",", ":"))
        self._audit.response(exchange, Outcome(201, None, body, note=SELF_REVIEW_NOTE))
        return ProxyResponse(201, "application/json", body, {"cache-control": "no-store"})

    def _answer_identity_review(self, exchange: Exchange) -> ProxyResponse:
        """``kubectl auth whoami`` names the caller the gateway verified (the cluster would
        name the policy's role); the body asks nothing, so it is not read."""
        review = identity_review(exchange.session, exchange.request.api_version or "v1")
        body = json.dumps(review, separators=(",", ":"))
        self._audit.response(exchange, Outcome(201, None, body, note=SELF_REVIEW_NOTE))
        return ProxyResponse(201, "application/json", body, {"cache-control": "no-store"})

    def _answer_unchanged(self, exchange: Exchange, unchanged: NoChange) -> ProxyResponse:
        """A write that changes nothing needs no approval: the dry run's answer (the object as
        it already is) goes back, with a warning saying nothing was written."""
        result = masked_response(unchanged.response, exchange.request, exchange.policy.masking)
        self._audit.response(
            exchange, Outcome(result.status, None, result.body, note=NO_CHANGE_WARNING)
        )
        return result.with_warning(NO_CHANGE_WARNING)

    def _answer_refused_dry_run(
        self,
        authenticated: Authenticated,
        exchange: Exchange,
        decision: Decision | None,
        refused: DryRunRefused,
    ) -> ProxyResponse:
        """The cluster's own answer to the dry run goes back (masked); no one was asked. The
        refusal is recorded with the status and Status the caller gets."""
        answer = masked_response(refused.response, exchange.request, exchange.policy.masking)
        self._audit.refusal(authenticated, exchange, decision, _dry_run_refusal(answer))
        return answer


def _dry_run_refusal(answer: ProxyResponse) -> EksgateError:
    """The refusal the caller got from the cluster's answer to the gateway's dry run: its
    status, and its Status reason and message when it has them (masked already)."""
    try:
        body = json.loads(answer.body)
    except ValueError:
        body = None
    status = body if isinstance(body, dict) and body.get("kind") == "Status" else {}
    message = f": {status['message']}" if status.get("message") else ""
    error = BadRequest(f"the cluster refused the dry run (HTTP {answer.status}){message}")
    error.status = answer.status  # what the caller saw, not eksgate's own 400
    error.reason = str(status.get("reason") or "") or error.reason
    return error


def _truthful_failure(exc: BaseException, exchange: Exchange) -> EksgateError:
    """The error to answer with when forwarding failed, saying whether it may have run."""
    failure = (
        exc
        if isinstance(exc, EksgateError)
        else BadGateway("the cluster's answer could not be processed; withheld")
    )
    if failure.nothing_sent or exchange.request.verb not in MUTATING_VERBS:
        return failure
    # The write may have reached the cluster: a client that retries blindly could repeat it.
    return type(failure)(
        f"{failure.message}. The cluster may have carried out this "
        f"{exchange.request.verb}: check the object's state before you retry",
        details=failure.details,
    )


def _answer_withheld(
    exchange: Exchange, outcome: Outcome, failure: EksgateError | None
) -> EksgateError:
    """The audit trail could not take the answer: it is withheld, and the caller is told
    truthfully what happened to the request."""
    if failure is not None:
        happened = f"forwarding failed ({failure.message})"
    else:
        happened = f"the cluster answered HTTP {outcome.status}"
    if exchange.request.verb in MUTATING_VERBS and (failure is None or not failure.nothing_sent):
        advice = (
            "The request was sent and may have been carried out: check the object's state "
            "before you retry"
        )
    else:
        advice = "Nothing was changed by it; try again in a moment"
    return AnswerWithheld(
        f"eksgate withheld the answer because it could not record it in the audit trail: "
        f"{happened}. {advice}"
    )


def _refuse_platform_limits(
    exchange: Exchange, approval_id: str | None, decision: Decision
) -> None:
    """What API Gateway + Lambda cannot carry, refused with what the caller can do instead,
    from what their policy actually offers."""
    request, headers = exchange.request, exchange.incoming.headers
    wants_upgrade = "upgrade" in headers or "upgrade" in headers.get("connection", "").lower()
    blocked = (
        request.subresource
        if request.subresource in CONNECTION_SUBRESOURCES
        else ("proxy" if request.verb == "proxy" else "")
    )
    if not blocked and not wants_upgrade:
        return
    if approval_id:
        raise Forbidden(
            f"your grant {approval_id} is approved, but {blocked or 'a connection upgrade'} "
            "cannot pass through the gateway (API Gateway and Lambda carry no streaming "
            "connections): get a direct EKS token for the window with `eksgate token --mode "
            "direct`, and use it with the cluster's own endpoint",
            details={"name": approval_id, "kind": "approval", "approval_id": approval_id},
        )
    what = blocked or "connection upgrades"
    exec_hint = (
        " To run a command, use `eksgate exec [-n NS] [-c C] POD -- CMD ARGS...` (or `kubectl "
        "eksgate exec ...`): decided by your policy, masked and recorded by the gateway."
        if blocked == "exec"
        else ""
    )
    if decision.effect == "deny":
        offer = f"Your policy offers no direct grant for it either: {decision.reason}"
    else:
        offer = (
            f"Your policy's rule {decision.rule_label} covers it, but only a rule with approval "
            "mode: grant and direct: true can hand out the EKS token it needs; ask your "
            "platform team for one"
        )
    raise Forbidden(
        f"{what} cannot pass through the eksgate gateway: API Gateway and Lambda carry no "
        f"streaming connections (exec, attach, port-forward, cp, proxy).{exec_hint} {offer}",
        details={"subresource": blocked or "upgrade", "policy": decision.policy},
    )
