"""Shared fixtures: an app wired to moto and a local OIDC issuer, served over loopback."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
from pathlib import Path

import boto3
import pytest
from eksgate_local.oidc_issuer import LocalOidcIssuer
from moto import mock_aws

from chalicelib.config import load_settings

REGION = "us-east-1"
SECRET_ID = "eksgate/test/signing-key"


@pytest.fixture(scope="session")
def oidc_issuer():
    with LocalOidcIssuer() as issuer:
        yield issuer


@pytest.fixture()
def aws(monkeypatch):
    """moto for every AWS call, in this process."""
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    with mock_aws():
        yield boto3.session.Session(region_name=REGION)


def app_environment(oidc_issuer: LocalOidcIssuer, policy_dir: Path | str) -> dict[str, str]:
    return {
        "EKSGATE_STAGE": "test",
        "EKSGATE_OIDC_ISSUERS": json.dumps(
            [
                {
                    "issuer": oidc_issuer.issuer,
                    "audiences": ["eksgate"],
                    "jwks_url": oidc_issuer.jwks_url,
                }
            ]
        ),
        "EKSGATE_CLUSTERS": json.dumps(
            {"demo": {"region": REGION}, "prod-eu": {"region": "eu-west-1"}}
        ),
        "EKSGATE_SIGNING_SECRET_ID": SECRET_ID,
        "EKSGATE_POLICY_DIR": str(policy_dir),
        "EKSGATE_AUDIT_TABLE": "test-audit",
        "EKSGATE_APPROVALS_TABLE": "test-approvals",
        "EKSGATE_IDEMPOTENCY_TABLE": "test-idempotency",
    }


@pytest.fixture()
def signing_secret(aws):
    from eksgate_local.aws import create_tables

    create_tables(
        aws.client("dynamodb"),
        {
            "AuditTable": "test-audit",
            "ApprovalsTable": "test-approvals",
            "IdempotencyTable": "test-idempotency",
        },
    )
    client = aws.client("secretsmanager")
    client.create_secret(Name=SECRET_ID, SecretString=base64.b64encode(os.urandom(32)).decode())
    return client


@pytest.fixture()
def settings(oidc_issuer, signing_secret):
    from chalicelib.config import DEFAULT_POLICY_DIR

    return load_settings(app_environment(oidc_issuer, DEFAULT_POLICY_DIR))


class _CapturedLog(logging.Handler):
    """Collects the app's formatted log lines and its metrics output."""

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__()
        self.setFormatter(formatter)
        self.lines: list[str] = []
        self.metrics = io.StringIO()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def getvalue(self) -> str:
        return "".join(line + "\n" for line in self.lines) + self.metrics.getvalue()


@pytest.fixture()
def app_log():
    """Everything the app logs (and its metrics) during the test, as text.

    A handler of its own, with the app's formatter, is attached and removed again: the app's
    own handler (and whatever stream pytest gave it) is left alone.
    """
    from chalicelib import observability

    captured = _CapturedLog(observability.logger.registered_formatter)
    eksgate_logger = logging.getLogger(observability.logger.name)
    eksgate_logger.addHandler(captured)
    saved_output = observability._output
    observability._output = captured.metrics
    yield captured
    eksgate_logger.removeHandler(captured)
    observability._output = saved_output
