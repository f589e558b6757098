"""Wiring: the core's objects built once per Lambda process from Settings and boto3 clients.

Built on first use, not at import time, so importing the app never reaches AWS and a cold
start pays only for what the first request needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
import urllib3

from chalicelib.approvals.gate import ApprovalGate
from chalicelib.approvals.model import ApprovalAsk
from chalicelib.approvals.service import ApprovalService, IdempotencyTable
from chalicelib.approvals.store import DynamoApprovalStore
from chalicelib.audit.recorder import GatewayAudit
from chalicelib.audit.store import AuditStore, AuditStoreTuning, DynamoAuditStore
from chalicelib.config import Settings, load_settings
from chalicelib.credentials.broker import Broker
from chalicelib.credentials.role_credentials import RoleCredentialCache
from chalicelib.credentials.session_token import SessionTokenCodec
from chalicelib.credentials.signing_keys import SecretsManagerKeyStore
from chalicelib.errors import ServiceUnavailable
from chalicelib.gateway.clusters import ClusterDirectory
from chalicelib.gateway.exchange import GatewayLimits
from chalicelib.gateway.forward import Forwarder
from chalicelib.gateway.pipeline import Gateway
from chalicelib.gateway.upstream import HttpsUpstream, Upstream
from chalicelib.identity.oidc import IdentityVerifier, JwksCache, http_jwks_fetcher
from chalicelib.observability import logger
from chalicelib.policy import Policy, PolicyError
from chalicelib.policy.snapshot import load_with_snapshot
from chalicelib.slack.client import LazySlackClient
from chalicelib.slack.credentials import SlackCredentialStore
from chalicelib.slack.directory import SlackDirectory


@dataclass
class Services:
    settings: Settings
    policies: tuple[Policy, ...]
    verifier: IdentityVerifier
    sessions: SessionTokenCodec
    role_credentials: RoleCredentialCache
    broker: Broker
    gateway: Gateway
    audit_store: AuditStore
    audit: GatewayAudit
    approvals: ApprovalService
    slack_credentials: SlackCredentialStore


def build_services(
    settings: Settings | None = None, session: Any = None, upstream: Upstream | None = None
) -> Services:
    settings = settings or load_settings()
    session = session or boto3.session.Session(region_name=settings.region)
    try:
        # From the snapshot packaging compiled, if it matches the files byte for byte.
        loaded = load_with_snapshot(settings.policy_dir)
    except PolicyError as exc:
        # The details go to the log for operators; callers only learn that we fail closed.
        logger.error("policies failed to load", extra={"problems": str(exc)})
        raise ServiceUnavailable(
            "policies failed to load; every request is refused until "
            "they are fixed (see the function's log)"
        ) from exc
    policies = loaded.policies
    if loaded.snapshot != "used":
        # Names the snapshot's state, never policy content; the policies loaded from the files.
        log = logger.info if loaded.snapshot == "absent" else logger.warning
        log(
            "policy snapshot not used; policies loaded from their files",
            extra={"snapshot": loaded.snapshot, "reason": loaded.detail},
        )
    http = urllib3.PoolManager(num_pools=4)
    verifier = IdentityVerifier(
        settings.issuers,
        JwksCache(http_jwks_fetcher(http), min_refresh_seconds=settings.jwks_min_refresh_seconds),
        leeway_seconds=settings.oidc_leeway_seconds,
        max_token_bytes=settings.max_oidc_token_bytes,
    )
    secretsmanager = session.client("secretsmanager")
    keys = SecretsManagerKeyStore(secretsmanager, settings.signing_secret_id)
    sessions = SessionTokenCodec(keys)
    role_credentials = RoleCredentialCache(session.client("sts"))
    dynamodb = session.client("dynamodb")
    if not settings.audit_table or not settings.approvals_table:
        raise ServiceUnavailable(
            "EKSGATE_AUDIT_TABLE and EKSGATE_APPROVALS_TABLE must be set: "
            "eksgate forwards nothing it cannot record"
        )
    audit_store = DynamoAuditStore(
        dynamodb,
        settings.audit_table,
        AuditStoreTuning(retention_seconds=settings.audit_retention_days * 86400),
    )
    audit = GatewayAudit(audit_store)
    slack_credentials = SlackCredentialStore(secretsmanager, settings.slack_secret_id)
    slack = LazySlackClient(slack_credentials, settings.slack_api_url)
    approvals = ApprovalService(
        DynamoApprovalStore(dynamodb, settings.approvals_table),
        slack,
        SlackDirectory(slack),
        channel_default=settings.slack_channel or "#eksgate-approvals",
        idempotency=IdempotencyTable(settings.idempotency_table, dynamodb)
        if settings.idempotency_table
        else None,
    )

    def direct_grant(identity: Any, cluster: str, policy: Policy) -> Any:
        """An open, approved grant under any of the policy's direct-grant rules."""
        for rule in policy.rules:
            if rule.approval and rule.approval.mode == "grant" and rule.approval.direct:
                grant = approvals.find_usable(ApprovalAsk(identity, cluster, policy.name, rule))
                if grant is not None and rule.approval.role:
                    return grant, rule.approval.role
        return None

    broker = Broker(settings, policies, sessions, role_credentials, direct_grants=direct_grant)
    forwarder = Forwarder(
        # an EKS client is made only if a cluster's endpoint is not configured
        ClusterDirectory(
            settings.clusters, lambda region: session.client("eks", region_name=region)
        ),
        role_credentials,
        upstream or HttpsUpstream(),
    )
    gateway = Gateway(
        sessions,
        policies,
        forwarder,
        audit,
        ApprovalGate(
            approvals,
            audit,
            wait_seconds=settings.approval_wait_seconds,
            channel=settings.slack_channel or "#eksgate-approvals",
        ),
        GatewayLimits(settings.max_request_body_bytes, settings.watch_timeout_seconds),
    )
    return Services(
        settings,
        policies,
        verifier,
        sessions,
        role_credentials,
        broker,
        gateway,
        audit_store,
        audit,
        approvals,
        slack_credentials,
    )
