"""Slack: the approvers' room. ``messages`` (Block Kit), ``interactions`` (verifying and reading
Slack's requests), ``directory`` (who is who), ``credentials`` (the bot token and signing
secret) and ``client`` (the Web API client, made on first use)."""
