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
from chalicelib.config import Settings, load_settings
from chalicelib.errors import ServiceUnavailable
from chalicelib.identity import IdentityVerifier, JwksCache, http_jwks_fetcher
from chalicelib.observability import logger
from chalicelib.policy import Policy, PolicyError, load_policies
from chalicelib.role_credentials import RoleCredentialCache
from chalicelib.session_token import SessionTokenCodec
from chalicelib.signing_keys import SecretsManagerKeyStore


@dataclass
class Services:
    settings: Settings
    policies: tuple[Policy, ...]
    verifier: IdentityVerifier
    sessions: SessionTokenCodec
    role_credentials: RoleCredentialCache
    broker: Broker


def build_services(settings: Settings | None = None, session: Any = None) -> Services:
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
    return Services(settings, policies, verifier, sessions, role_credentials, broker)
