"""Who is calling, once verified: a value the whole core uses, with no way to make one from a
token (that is ``chalicelib.identity.oidc``'s job)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Identity:
    """A verified caller. ``claims`` holds every claim, for policy matching and audit."""

    subject: str
    issuer: str
    email: str | None = None
    groups: tuple[str, ...] = ()
    claims: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    # The email claim even when the issuer did not verify it: never trusted to grant anything,
    # only to refuse more (a requester can never approve their own request under it).
    claimed_email: str | None = None

    def describe(self) -> str:
        """A human-readable name for messages: ``email`` if known, else the subject."""
        who = f"{self.subject} <{self.email}>" if self.email else self.subject
        return f"{who} (issuer {self.issuer})"


@dataclass(frozen=True)
class Caller:
    """Where a request came from, as API Gateway saw it (recorded, never trusted)."""

    source_ip: str = ""
    user_agent: str = ""
