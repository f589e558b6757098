"""The ``local`` stage of .chalice/config.json, filled in with the running stack's addresses.

One source of truth: the local stack runs the app with the same settings shape a deployed
stage has, only pointed at loopback.
"""

from __future__ import annotations

import json
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]


def stage_environment(stage: str = "local", project_dir: Path = PROJECT_DIR) -> dict[str, str]:
    """Environment variables Chalice would set for ``stage`` (top level, then the stage's)."""
    config = json.loads((project_dir / ".chalice" / "config.json").read_text())
    env = dict(config.get("environment_variables", {}))
    env.update(config["stages"][stage].get("environment_variables", {}))
    return env


def local_app_environment(jwks_url: str) -> dict[str, str]:
    env = stage_environment("local")
    issuers = json.loads(env["EKSGATE_OIDC_ISSUERS"])
    for issuer in issuers:
        issuer["jwks_url"] = jwks_url
    env["EKSGATE_OIDC_ISSUERS"] = json.dumps(issuers)
    return env
