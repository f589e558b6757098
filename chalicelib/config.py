"""Settings, read once from the environment Chalice sets per stage (.chalice/config.json)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

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
        raise ConfigError(
            f"setting {name} is not valid JSON: {exc.msg} at column {exc.colno}"
        ) from exc


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


@dataclass(frozen=True)
class Setting:
    """One environment variable: the Settings field it fills, how to read it, what it expects."""

    field: str
    env: str
    parse: Callable[[str], object]
    default: str
    expects: str  # said back to the operator when the value cannot be read


def _whole(at_most: int | None = None, at_least: int = 0) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text.strip())
        if value < at_least:
            raise ValueError(f"below {at_least}")
        return value if at_most is None else min(value, at_most)

    return parse


def _seconds(at_most: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = float(text.strip())
        if not value >= 0:  # also refuses NaN
            raise ValueError("negative")
        return min(value, at_most)

    return parse


def _names(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


# Every setting, in one place. Caps are product limits, not preferences: a gateway session
# never outlives the EKS token lifetime; watches end (and clients reconnect) before API
# Gateway's 29 s integration timeout; a pending approval is waited for inside those 29 s.
SETTINGS_TABLE: tuple[Setting, ...] = (
    Setting("stage", "EKSGATE_STAGE", str, "dev", "the stage name"),
    Setting(
        "policy_dir",
        "EKSGATE_POLICY_DIR",
        lambda t: Path(t or DEFAULT_POLICY_DIR),
        "",
        "a directory of policy files",
    ),
    Setting(
        "max_session_seconds",
        "EKSGATE_MAX_SESSION_SECONDS",
        _whole(900, 1),
        "900",
        "a whole number of seconds (at most 900 is used)",
    ),
    Setting(
        "max_request_body_bytes",
        "EKSGATE_MAX_REQUEST_BODY_BYTES",
        _whole(None, 1),
        str(64 * 1024),
        "a whole number of bytes",
    ),
    Setting(
        "watch_timeout_seconds",
        "EKSGATE_WATCH_TIMEOUT_SECONDS",
        _whole(24, 1),
        "20",
        "a whole number of seconds (at most 24 is used)",
    ),
    Setting("audit_table", "EKSGATE_AUDIT_TABLE", str, "", "a DynamoDB table name"),
    Setting("approvals_table", "EKSGATE_APPROVALS_TABLE", str, "", "a DynamoDB table name"),
    Setting("idempotency_table", "EKSGATE_IDEMPOTENCY_TABLE", str, "", "a DynamoDB table name"),
    Setting(
        "audit_retention_days",
        "EKSGATE_AUDIT_RETENTION_DAYS",
        _whole(None, 1),
        "90",
        "a whole number of days",
    ),
    Setting("slack_secret_id", "EKSGATE_SLACK_SECRET_ID", str, "", "a Secrets Manager id"),
    Setting("slack_api_url", "EKSGATE_SLACK_API_URL", str, "", "a URL (empty: Slack itself)"),
    Setting("slack_channel", "EKSGATE_SLACK_CHANNEL", str, "", "a Slack channel"),
    Setting(
        "approval_wait_seconds",
        "EKSGATE_APPROVAL_WAIT_SECONDS",
        _seconds(15.0),
        "5",
        "a number of seconds (at most 15 is used)",
    ),
    Setting(
        "auditor_groups", "EKSGATE_AUDITOR_GROUPS", _names, "", "comma-separated OIDC group names"
    ),
)


def _read(env: Mapping[str, str], setting: Setting) -> object:
    raw = env.get(setting.env, setting.default)
    try:
        return setting.parse(raw)
    except (ValueError, TypeError):
        raise ConfigError(
            f"setting {setting.env}={raw!r} is not valid: expected {setting.expects}"
        ) from None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build Settings from the environment; a ConfigError names the setting that is wrong."""
    env = os.environ if environ is None else environ
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    signing_secret_id = env.get("EKSGATE_SIGNING_SECRET_ID", "")
    if not signing_secret_id:
        raise ConfigError("setting EKSGATE_SIGNING_SECRET_ID (the signing key's secret) is missing")
    values = {setting.field: _read(env, setting) for setting in SETTINGS_TABLE}
    return Settings(
        region=region,
        issuers=_parse_issuers(_json_setting(env, "EKSGATE_OIDC_ISSUERS", "[]")),
        clusters=_parse_clusters(_json_setting(env, "EKSGATE_CLUSTERS", "{}"), region),
        signing_secret_id=signing_secret_id,
        **values,  # type: ignore[arg-type]
    )
