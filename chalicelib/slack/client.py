"""The Slack Web API client, made on first use from the bot token in Secrets Manager."""

from __future__ import annotations

from typing import Any

from chalicelib.errors import EksgateError
from chalicelib.slack.credentials import SlackCredentialStore


class LazySlackClient:
    """A slack_sdk WebClient made on first use, so only Slack work needs the Slack secret.

    An unreadable secret surfaces as a SlackClientError, which approvals treat as "Slack
    could not be notified": the approval is still recorded and nothing is approved.
    """

    def __init__(self, credentials: SlackCredentialStore, base_url: str) -> None:
        self._credentials = credentials
        self._base_url = base_url
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            from slack_sdk import WebClient
            from slack_sdk.errors import SlackClientError

            try:
                token = self._credentials.get().bot_token
            except EksgateError as exc:
                raise SlackClientError(exc.message) from exc
            base_url = self._base_url or WebClient.BASE_URL  # "": Slack's own API
            self._client = WebClient(token=token, timeout=5, base_url=base_url)
        return getattr(self._client, name)
