"""The Slack app's bot token and signing secret, held in one Secrets Manager secret.

The secret's value is JSON: ``{"bot_token": "xoxb-...", "signing_secret": "..."}``. It is
read once per warm Lambda and never logged.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from typing import Any

from chalicelib.errors import ServiceUnavailable


@dataclass(frozen=True)
class SlackCredentials:
    bot_token: str
    signing_secret: str

    def __repr__(self) -> str:
        return "SlackCredentials(bot_token=<redacted>, signing_secret=<redacted>)"


class SlackCredentialStore:
    def __init__(self, secretsmanager: Any, secret_id: str) -> None:
        self._client = secretsmanager
        self._secret_id = secret_id
        self._lock = threading.Lock()
        self._cached: SlackCredentials | None = None

    def get(self) -> SlackCredentials:
        with self._lock:
            if self._cached is None:
                self._cached = self._load()
            return self._cached

    def _load(self) -> SlackCredentials:
        if not self._secret_id:
            raise ServiceUnavailable("Slack is not configured (EKSGATE_SLACK_SECRET_ID)")
        try:
            value = self._client.get_secret_value(SecretId=self._secret_id)["SecretString"]
            data = json.loads(value)
            return SlackCredentials(
                bot_token=data["bot_token"], signing_secret=data["signing_secret"]
            )
        except (KeyError, ValueError, TypeError) as exc:
            raise ServiceUnavailable(
                "the Slack secret must be JSON with bot_token and signing_secret (docs/deploy.md)"
            ) from exc
        except Exception as exc:  # botocore errors: fail closed without the secret's content
            raise ServiceUnavailable(f"cannot read the Slack secret: {type(exc).__name__}") from exc
