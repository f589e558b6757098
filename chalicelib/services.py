"""Wiring: the core's objects built once per Lambda process from Settings and boto3 clients.

Built on first use, not at import time, so importing the app never reaches AWS and a cold
start pays only for what the first request needs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
import urllib3

from chalicelib.broker import Broker
from chalicelib.clusters import ClusterDirectory
from chalicelib.config import Settings, load_settings
from chalicelib.errors import ServiceUnavailable
from chalicelib.identity import IdentityVerifier, JwksCache, http_jwks_fetcher
from chalicelib.observability import logger
from chalicelib.policy import Policy, PolicyError, load_policies
from chalicelib.proxy import Gateway
from chalicelib.role_credentials import RoleCredentialCache
from chalicelib.session_token import SessionTokenCodec
from chalicelib.signing_keys import SecretsManagerKeyStore
from chalicelib.upstream import HttpsUpstream, Upstream


@dataclass
class Services:
    settings: Settings
    policies: tuple[Policy, ...]
    verifier: IdentityVerifier
    sessions: SessionTokenCodec
    role_credentials: RoleCredentialCache
    broker: Broker
    gateway: Gateway


def build_services(settings: Settings | None = None, session: Any = None,
                   upstream: Upstream | None = None) -> Services:
    settings = settings or load_settings()
    session = session or boto3.session.Session(region_name=settings.region)
    try:
        policies = load_policies(settings.policy_dir)
    except PolicyError as exc:
        # The details go to the log for operators; callers only learn that we fail closed.
        logger.error("policies failed to load", extra={"problems": str(exc)})
        raise ServiceUnavailable("policies failed to load; every request is refused until "
                                 "they are fixed (see the function's log)") from exc
    http = urllib3.PoolManager(num_pools=4)
    verifier = IdentityVerifier(
        settings.issuers,
        JwksCache(http_jwks_fetcher(http), min_refresh_seconds=settings.jwks_min_refresh_seconds),
        leeway_seconds=settings.oidc_leeway_seconds,
        max_token_bytes=settings.max_oidc_token_bytes,
    )
    keys = SecretsManagerKeyStore(session.client("secretsmanager"), settings.signing_secret_id)
    sessions = SessionTokenCodec(keys)
    role_credentials = RoleCredentialCache(session.client("sts"))
    broker = Broker(settings, policies, sessions, role_credentials)
    gateway = Gateway(
        sessions=sessions, policies=policies,
        # an EKS client is made only if a cluster's endpoint is not configured
        clusters=ClusterDirectory(settings.clusters,
                                  lambda region: session.client("eks", region_name=region)),
        role_credentials=role_credentials, upstream=upstream or HttpsUpstream(),
        max_request_body_bytes=settings.max_request_body_bytes,
        watch_timeout_seconds=settings.watch_timeout_seconds)
    return Services(settings, policies, verifier, sessions, role_credentials, broker, gateway)
