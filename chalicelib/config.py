"""Settings, read once from the environment Chalice sets per stage (.chalice/config.json)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from chalicelib.errors import EksgateError

DEFAULT_POLICY_DIR = Path(__file__).resolve().parent / "policies"


class ConfigError(EksgateError):
    """The deployment is misconfigured; the message names the setting to fix."""

    status = 500
    reason = "InternalError"


@dataclass(frozen=True)
class IssuerConfig:
    """An OIDC issuer we trust. ``jwks_url`` may differ from the issuer (local/test issuers)."""

    issuer: str
    audiences: tuple[str, ...]
    jwks_url: str
    groups_claim: str = "groups"


@dataclass(frozen=True)
class ClusterConfig:
    """An EKS cluster the gateway fronts.

    Empty ``endpoint``/``ca_data``: the gateway asks eks:DescribeCluster.
    """

    name: str
    region: str
    endpoint: str = ""
    ca_data: str = ""
    eks_name: str = ""  # the EKS cluster's own name, when it differs from ours

    @property
    def eks_cluster_name(self) -> str:
        return self.eks_name or self.name


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    issuers: tuple[IssuerConfig, ...]
    clusters: Mapping[str, ClusterConfig]
    signing_secret_id: str
    policy_dir: Path = DEFAULT_POLICY_DIR
    max_session_seconds: int = 900
    max_request_body_bytes: int = 64 * 1024
    max_oidc_token_bytes: int = 16 * 1024
    oidc_leeway_seconds: int = 30
    jwks_min_refresh_seconds: int = 60
    watch_timeout_seconds: int = 20
    audit_table: str = ""
    approvals_table: str = ""
    idempotency_table: str = ""
    audit_retention_days: int = 90
    slack_secret_id: str = ""
    slack_api_url: str = ""  # empty: Slack itself; the local stack points at its fake
    slack_channel: str = ""
    approval_wait_seconds: float = 5.0
    auditor_groups: tuple[str, ...] = ()

    def issuer(self, issuer: str) -> IssuerConfig | None:
        return next((i for i in self.issuers if i.issuer == issuer), None)


def _json_setting(environ: Mapping[str, str], name: str, default: str) -> object:
    raw = environ.get(name, default)
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"setting {name} is not valid JSON: {exc.msg} at column {exc.colno}")


def _parse_issuers(value: object) -> tuple[IssuerConfig, ...]:
    if not isinstance(value, list):
        raise ConfigError("setting EKSGATE_OIDC_ISSUERS must be a JSON list of issuers")
    issuers = []
    for index, item in enumerate(value):
        where = f"EKSGATE_OIDC_ISSUERS[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("issuer"), str):
            raise ConfigError(f"{where} needs an 'issuer' string")
        audiences = item.get("audiences", item.get("audience"))
        if isinstance(audiences, str):
            audiences = [audiences]
        if not audiences or not all(isinstance(a, str) and a for a in audiences):
            raise ConfigError(f"{where} needs 'audiences': the audience values tokens must carry")
        issuer = item["issuer"].rstrip("/")
        jwks_url = item.get("jwks_url") or f"{issuer}/.well-known/jwks.json"
        issuers.append(
            IssuerConfig(
                issuer=item["issuer"],
                audiences=tuple(audiences),
                jwks_url=jwks_url,
                groups_claim=item.get("groups_claim", "groups"),
            )
        )
    return tuple(issuers)


def _parse_clusters(value: object, default_region: str) -> dict[str, ClusterConfig]:
    if not isinstance(value, dict):
        raise ConfigError(
            'setting EKSGATE_CLUSTERS must be a JSON object {"name": {"region": ...}}'
        )
    clusters = {}
    for name, item in value.items():
        item = item or {}
        if not isinstance(item, dict):
            raise ConfigError(f"EKSGATE_CLUSTERS[{name!r}] must be an object")
        clusters[name] = ClusterConfig(
            name=name,
            region=item.get("region", default_region),
            endpoint=item.get("endpoint", ""),
            ca_data=item.get("ca_data", ""),
            eks_name=item.get("eks_name", ""),
        )
    return clusters


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from the environment; a ConfigError names the setting that is wrong."""
    env = os.environ if environ is None else environ
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    signing_secret_id = env.get("EKSGATE_SIGNING_SECRET_ID", "")
    if not signing_secret_id:
        raise ConfigError("setting EKSGATE_SIGNING_SECRET_ID (the signing key's secret) is missing")
    max_session = int(env.get("EKSGATE_MAX_SESSION_SECONDS", "900"))
    return Settings(
        stage=env.get("EKSGATE_STAGE", "dev"),
        region=region,
        issuers=_parse_issuers(_json_setting(env, "EKSGATE_OIDC_ISSUERS", "[]")),
        clusters=_parse_clusters(_json_setting(env, "EKSGATE_CLUSTERS", "{}"), region),
        signing_secret_id=signing_secret_id,
        policy_dir=Path(env.get("EKSGATE_POLICY_DIR") or DEFAULT_POLICY_DIR),
        # A gateway session never outlives the EKS token lifetime, whatever a stage says.
        max_session_seconds=min(max_session, 900),
        max_request_body_bytes=int(env.get("EKSGATE_MAX_REQUEST_BODY_BYTES", str(64 * 1024))),
        # Watches end (and clients reconnect) before API Gateway's 29 s integration timeout.
        watch_timeout_seconds=min(int(env.get("EKSGATE_WATCH_TIMEOUT_SECONDS", "20")), 24),
        audit_table=env.get("EKSGATE_AUDIT_TABLE", ""),
        approvals_table=env.get("EKSGATE_APPROVALS_TABLE", ""),
        idempotency_table=env.get("EKSGATE_IDEMPOTENCY_TABLE", ""),
        audit_retention_days=int(env.get("EKSGATE_AUDIT_RETENTION_DAYS", "90")),
        slack_secret_id=env.get("EKSGATE_SLACK_SECRET_ID", ""),
        slack_api_url=env.get("EKSGATE_SLACK_API_URL", ""),
        slack_channel=env.get("EKSGATE_SLACK_CHANNEL", ""),
        # A pending approval is waited for inside API Gateway's 29 s, leaving time to answer.
        approval_wait_seconds=min(float(env.get("EKSGATE_APPROVAL_WAIT_SECONDS", "5")), 15.0),
        auditor_groups=tuple(
            g.strip() for g in env.get("EKSGATE_AUDITOR_GROUPS", "").split(",") if g.strip()
        ),
    )
