"""The approvals workflow: ask in Slack, take the decision, let the gateway use it.

``ApprovalService`` joins the store, Slack and the pure parts. The gateway calls
``find_usable`` before forwarding a request that needs approval and ``request`` (then maybe
``wait`` and ``redeem``) when there is none; the Slack interactivity route calls
``handle_interaction``; a schedule calls ``expire_overdue``.

Slack is best effort everywhere except where it decides something: a message that cannot be
posted or updated is logged and recorded, never a reason to approve; a clicker or group that
cannot be looked up refuses the click (``SlackUnavailable``).

Slack may deliver one interaction more than once (its retries carry ``X-Slack-Retry-Num``; an
attacker may replay a captured request within the 5 signed minutes). Two layers make that
harmless. The conditional writes are the guarantee: a decision is recorded once per person
and per delivery (``interaction_key``), and a refusal claims the delivery before answering,
so a duplicate never makes a second decision or a second ephemeral message. When an
idempotency table is configured, powertools Idempotency sits in front, keyed on the hash of
the raw body: a duplicate gets the first answer back without touching the approval, and a
duplicate that arrives while the first is still running gets an empty 200 (Slack only needs
the acknowledgement). If that table fails we fall back to the conditional writes alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)
from slack_sdk.errors import SlackApiError, SlackClientError

from chalicelib.approvals.authorization import refusal_for
from chalicelib.approvals.fingerprint import (
    grant_match_key,
    once_match_key,
    rule_identity,
)
from chalicelib.approvals.model import (
    APPROVE as APPROVE_DECISION,
)
from chalicelib.approvals.model import (
    DENY,
    GRANT,
    ONCE,
    PENDING,
    PERSON,
    WORKLOAD,
    Approval,
    ApprovalAsk,
    Vote,
    is_approval_id,
    iso_time,
    new_approval_id,
)
from chalicelib.approvals.store import NOT_FOUND, ApprovalStore, DecisionOutcome, DecisionWitness
from chalicelib.audit.store import AuditUnavailable
from chalicelib.errors import NotFound
from chalicelib.observability import logger
from chalicelib.policy.model import ApprovalSettings, Rule
from chalicelib.slack import messages
from chalicelib.slack.directory import SlackDirectory
from chalicelib.slack.interactions import APPROVE, DENY_CLICK, DENY_SUBMIT, Interaction

# Longer than the 5 minutes a signed Slack request stays valid, so every replay that passes
# the signature check finds the first answer.
IDEMPOTENCY_SECONDS = 10 * 60

SlackErrors = (SlackApiError, SlackClientError, OSError)


DECISION_NOT_RECORDED = (
    "eksgate could not record your decision in the audit trail, so nothing was decided; "
    "click again in a moment."
)


class InteractionWitness(DecisionWitness, Protocol):
    """Records what happens to a click in the requesting session's audit trail."""

    def refused(self, approval: Approval, slack_user: str, action: str, why: str) -> None:
        """A click that decided nothing (best effort: the click changed nothing anyway)."""
        ...


@dataclass(frozen=True)
class Timing:
    """The wall clock approvals are dated by, and how waiting sleeps (tests move both)."""

    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep


@dataclass(frozen=True)
class IdempotencyTable:
    """Where Slack's repeated deliveries are remembered (powertools Idempotency)."""

    table_name: str
    client: Any


class ApprovalService:
    """Approvals end to end; every collaborator is passed in (tests give moto and the fake)."""

    def __init__(
        self,
        store: ApprovalStore,
        slack_client: Any,
        directory: SlackDirectory,
        *,
        channel_default: str,
        timing: Timing = Timing(),
        idempotency: IdempotencyTable | None = None,
    ) -> None:
        self._store = store
        self._slack = slack_client
        self._directory = directory
        self._channel_default = channel_default
        self._clock = timing.clock
        self._sleep = timing.sleep
        self._idempotent: Callable[..., dict[str, Any] | None] | None = None
        self._idempotency_config = IdempotencyConfig(expires_after_seconds=IDEMPOTENCY_SECONDS)
        if idempotency:
            persistence = DynamoDBPersistenceLayer(
                table_name=idempotency.table_name, boto3_client=idempotency.client
            )
            self._idempotent = idempotent_function(
                data_keyword_argument="delivery",
                persistence_store=persistence,
                config=self._idempotency_config,
            )(self._handle_delivery)

    def register_lambda_context(self, context: Any) -> None:
        """Tell the idempotency layer when this invocation times out.

        Call it from the Lambda handler: a delivery whose invocation timed out then stops
        counting as "in progress" at that moment, instead of blocking Slack's retries of it
        for the whole idempotency period.
        """
        self._idempotency_config.register_lambda_context(context)

    # -- the gateway's side -------------------------------------------------------------------

    def request(self, ask: ApprovalAsk, diff: str) -> Approval:
        """Ask for approval of ``ask.request`` under ``ask.rule``; returns the pending approval.

        An identical request denied within its ttl gets that denial back (nothing is posted).
        An identical request still pending (same requester and request for ``once``, same
        requester and rule for ``grant``) is reused and not posted again, unless its message
        never reached Slack, in which case posting is tried again. If Slack fails, the
        approval is kept with ``slack_error`` set: it waits, and is never approved by default.
        ``diff`` must already be masked (``diff.object_diff`` of masked objects).
        """
        request, subject, requester, rule = ask.request, ask.subject, ask.requester, ask.rule
        assert request is not None and subject is not None, "a request to approve"
        now = int(self._clock())
        settings = rule.approval or ApprovalSettings()
        fingerprint = subject.fingerprint()
        match_key = self._match_key(ask, settings, fingerprint)
        denied = self._store.recent_denial(match_key, now)
        if denied is not None:
            return denied
        approval = Approval(
            approval_id=new_approval_id(),
            status=PENDING,
            requester={
                "subject": requester.subject,
                "issuer": requester.issuer,
                # Only a verified email tells the requester apart from an approver; an
                # unverified one is kept for display, marked, and decides nothing.
                "email": requester.email,
                "claimed_email": None if requester.email else requester.claimed_email,
                "kind": WORKLOAD if ask.workload else PERSON,
            },
            cluster=ask.cluster,
            policy=ask.policy,
            rule=rule.label,
            mode=settings.mode,
            direct=settings.direct,
            fingerprint=fingerprint,
            match_key=match_key,
            request={
                "method": subject.method_and_type,
                "path": request.path,
                "query": subject.canonical_query,
                "verb": request.verb,
                "resource": request.resource,
                "subresource": request.subresource,
                "namespace": request.namespace,
                "name": request.name,
                "api_group": request.api_group,
                "intent": subject.intent,
            },
            reason=rule.reason,
            approvers=tuple(rule.approvers),
            min_approvers=settings.min_approvers,
            created_at=iso_time(now),
            expires_at=now + settings.ttl_seconds,
            ttl_seconds=settings.ttl_seconds,
            window_seconds=settings.window_seconds,
            diff=diff,
            session_id=ask.session_id,
        )
        # One pending approval per requester and subject, however many ask at once: only
        # the request that created it posts to Slack.
        stored, created = self._store.create_pending(approval, now)
        if not created:
            if stored.slack_ts is None and stored.slack_error is not None:
                return self._post(stored, rule)  # the first post failed: try again
            return stored
        return self._post(stored, rule)

    def find_usable(self, ask: ApprovalAsk, now: float | None = None) -> Approval | None:
        """The approval that lets this request through now, or None.

        ``once``: an approved single-use approval of this exact request, which this call uses
        up (of concurrent callers exactly one gets it). ``grant``: an open window for this
        requester and rule, which any request of the rule may use until it closes.
        """
        at = self._clock() if now is None else now
        settings = ask.rule.approval or ApprovalSettings()
        if settings.mode == GRANT:
            return self._store.active_grant(self._match_key(ask, settings, ""), at)
        if ask.subject is None:
            return None  # a once-approval is of one exact request, and there is none here
        match_key = self._match_key(ask, settings, ask.subject.fingerprint())
        return self._store.consume_once(match_key, at)

    def wait(self, approval_id: str, seconds: float, poll: float = 0.5) -> Approval:
        """The approval once it is no longer pending, or as it is after ``seconds``."""
        deadline = time.monotonic() + max(0.0, seconds)
        while True:
            approval = self._store.get(approval_id)
            if approval is None:
                raise NotFound(f"there is no approval {approval_id}")
            remaining = deadline - time.monotonic()
            if approval.status != PENDING or remaining <= 0:
                return approval
            self._sleep(min(poll, remaining))

    def redeem(self, approval: Approval, now: float | None = None) -> Approval | None:
        """Use an approval ``wait`` returned as approved: a ``once`` approval is used up here
        (None if someone else used it or it expired), a grant is returned while its window
        is open. Saves a lookup by match key right after a decision."""
        at = self._clock() if now is None else now
        if approval.mode == GRANT:
            current = self._store.get(approval.approval_id)
            usable = (
                current is not None
                and current.status == "approved"
                and (current.window_ends_at or 0) > at
            )
            return current if usable else None
        return self._store.consume(approval.approval_id, approval.match_key, at)

    def give_back(self, approval: Approval) -> bool:
        """A used once-approval whose request never reached the cluster is usable again."""
        returned = self._store.give_back(approval)
        if returned:
            logger.info("approval given back", extra={"approval_id": approval.approval_id})
        return returned

    def get(self, approval_id: str) -> Approval | None:
        """The approval with this id, or None (ids of the wrong shape are never looked up)."""
        return self._store.get(approval_id) if is_approval_id(approval_id) else None

    def expire_overdue(self, now: float | None = None) -> list[Approval]:
        """Expire pending approvals past their deadline and mark their messages; the expired."""
        expired = self._store.expire_overdue(self._clock() if now is None else now)
        for approval in expired:
            self._update_message(approval)
        return expired

    # -- Slack's side ---------------------------------------------------------------------------

    def handle_interaction(
        self, interaction: Interaction, witness: InteractionWitness | None = None
    ) -> dict[str, Any] | None:
        """Act on a verified click or submission; the body to answer Slack with (None: empty 200).

        Does a few small reads and writes and at most two Slack calls, well within the
        3 seconds Slack waits; it never waits for anything else.
        """
        if self._idempotent is not None:
            try:
                result: dict[str, Any] | None = self._idempotent(
                    delivery=interaction.interaction_key, interaction=interaction, witness=witness
                )
                return result
            except IdempotencyAlreadyInProgressError:
                return None  # the first delivery is being handled; Slack only needs the ack
            except IdempotencyPersistenceLayerError as exc:
                logger.warning(
                    "idempotency table unavailable; relying on conditional writes",
                    extra={"error": str(exc)},
                )
        return self._dispatch(interaction, witness)

    def _handle_delivery(
        self,
        *,
        delivery: str,
        interaction: Interaction,
        witness: InteractionWitness | None = None,
    ) -> dict[str, Any] | None:
        """What powertools wraps: ``delivery`` (the body hash) is the idempotency key."""
        return self._dispatch(interaction, witness)

    def _dispatch(
        self, interaction: Interaction, witness: InteractionWitness | None
    ) -> dict[str, Any] | None:
        now = self._clock()
        approval = self.get(interaction.approval_id)
        if approval is None:
            text = messages.unknown_approval_text(interaction.approval_id)
            if interaction.kind == DENY_SUBMIT:
                return _form_error(text)
            self._ephemeral(interaction, None, text)
            return None
        if interaction.kind == DENY_SUBMIT and not interaction.reason:
            return _form_error(messages.empty_reason_text())
        clicker = self._directory.user(interaction.user_id)
        refusal = refusal_for(approval, clicker, self._directory.group_members, now)
        if refusal is not None:
            return self._refuse(interaction, approval, refusal, witness)
        if interaction.kind == DENY_CLICK:
            return self._open_deny_form(interaction, approval)
        decision = APPROVE_DECISION if interaction.kind == APPROVE else DENY
        vote = Vote(
            clicker.id,
            clicker.name,
            clicker.email,
            decision,
            interaction.reason if decision == DENY else "",
            interaction.interaction_key,
        )
        try:
            outcome = self._store.record_decision(approval.approval_id, vote, now, witness)
        except AuditUnavailable:
            # No record, no decision: the transaction wrote neither.
            return self._refuse(interaction, approval, DECISION_NOT_RECORDED)
        return self._after_decision(interaction, outcome, witness)

    def _after_decision(
        self,
        interaction: Interaction,
        outcome: DecisionOutcome,
        witness: InteractionWitness | None,
    ) -> dict[str, Any] | None:
        approval = outcome.approval
        logger.info(
            "approval decision",
            extra={
                "approval_id": interaction.approval_id,
                "user_id": interaction.user_id,
                "kind": interaction.kind,
                "outcome": outcome.outcome,
            },
        )
        if outcome.changed and approval is not None:
            self._update_message(approval)
            if (
                interaction.channel
                and interaction.message_ts
                and interaction.message_ts != approval.slack_ts
            ):
                # A second copy of the request (posted by a racing identical request) was
                # clicked: show the outcome there too.
                self._update_message(approval, interaction.channel, interaction.message_ts)
            return None
        if outcome.outcome == "duplicate":
            return None
        if approval is None or outcome.outcome == NOT_FOUND:
            text = messages.unknown_approval_text(interaction.approval_id)
            return _form_error(text) if interaction.kind == DENY_SUBMIT else None
        # Someone else got there between our check and our write: explain as a refusal.
        clicker = self._directory.user(interaction.user_id)
        refusal = refusal_for(approval, clicker, self._directory.group_members, self._clock())
        explanation = refusal or f"This request is {approval.status}."
        return self._refuse(interaction, approval, explanation, witness)

    def _refuse(
        self,
        interaction: Interaction,
        approval: Approval,
        explanation: str,
        witness: InteractionWitness | None = None,
    ) -> dict[str, Any] | None:
        if witness is not None and approval.session_id:
            # Who tried and why it did not count: recorded as such, never as a decision.
            witness.refused(approval, interaction.user_id, interaction.kind, explanation)
        if interaction.kind == DENY_SUBMIT:
            # The form is still open: show why right under the reason field.
            return _form_error(explanation)
        if self._store.claim_interaction(approval.approval_id, interaction.interaction_key):
            self._ephemeral(interaction, approval, messages.refusal_text(explanation))
        return None

    def _open_deny_form(
        self, interaction: Interaction, approval: Approval
    ) -> dict[str, Any] | None:
        if not interaction.trigger_id:
            self._ephemeral(
                interaction,
                approval,
                messages.refusal_text("Slack sent no trigger to open the form."),
            )
            return None
        try:
            self._slack.views_open(
                trigger_id=interaction.trigger_id,
                view=messages.deny_reason_modal(approval.approval_id),
            )
        except SlackErrors as exc:
            logger.warning(
                "could not open the deny form",
                extra={"approval_id": approval.approval_id, "error": _slack_error(exc)},
            )
            self._ephemeral(
                interaction,
                approval,
                messages.refusal_text(
                    f"The Deny form could not be opened ({_slack_error(exc)}); click Deny again."
                ),
            )
        return None

    # -- Slack calls (best effort) --------------------------------------------------------------

    def _post(self, approval: Approval, rule: Rule) -> Approval:
        channel = (rule.approval.channel if rule.approval else None) or self._channel_default
        text, blocks = messages.request_blocks(approval)
        try:
            answer = self._slack.chat_postMessage(
                channel=channel, text=text, blocks=blocks, unfurl_links=False, unfurl_media=False
            )
        except SlackErrors as exc:
            error = f"could not post to Slack channel {channel}: {_slack_error(exc)}"
            logger.warning(
                "approval not posted", extra={"approval_id": approval.approval_id, "error": error}
            )
            return self._store.set_slack_error(approval.approval_id, error)
        return self._store.set_slack_message(
            approval.approval_id, str(answer["channel"]), str(answer["ts"])
        )

    def _update_message(
        self, approval: Approval, channel: str | None = None, ts: str | None = None
    ) -> None:
        channel = channel or approval.slack_channel
        ts = ts or approval.slack_ts
        if not channel or not ts:
            return
        text, blocks = messages.message_for(approval)
        try:
            self._slack.chat_update(channel=channel, ts=ts, text=text, blocks=blocks)
        except SlackErrors as exc:
            # The decision stands; the message is only a view of it.
            logger.warning(
                "approval message not updated",
                extra={"approval_id": approval.approval_id, "error": _slack_error(exc)},
            )

    def _ephemeral(self, interaction: Interaction, approval: Approval | None, text: str) -> None:
        channel = interaction.channel or (approval.slack_channel if approval else None)
        if not channel:
            return
        try:
            self._slack.chat_postEphemeral(channel=channel, user=interaction.user_id, text=text)
        except SlackErrors as exc:
            logger.warning(
                "ephemeral reply not sent",
                extra={"user_id": interaction.user_id, "error": _slack_error(exc)},
            )

    def _match_key(self, ask: ApprovalAsk, settings: ApprovalSettings, fingerprint: str) -> str:
        requester = ask.requester
        if settings.mode == GRANT:
            return grant_match_key(
                requester.subject,
                ask.cluster,
                ask.policy,
                rule_identity(ask.rule),
                issuer=requester.issuer,
            )
        if settings.mode != ONCE:
            raise ValueError(f"unknown approval mode {settings.mode!r}")
        return once_match_key(
            requester.subject, fingerprint, issuer=requester.issuer, cluster=ask.cluster
        )


def _form_error(text: str) -> dict[str, Any]:
    return {"response_action": "errors", "errors": {messages.REASON_BLOCK: text[:2000]}}


def _slack_error(exc: BaseException) -> str:
    if isinstance(exc, SlackApiError) and exc.response is not None:
        return str(exc.response.get("error") or exc)
    return f"{type(exc).__name__}: {exc}"
