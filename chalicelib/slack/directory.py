"""Who is who in Slack: a clicker's name and email, a user group's members. Cached briefly.

A click must be answered within Slack's 3 seconds, and one approval can draw many clicks, so
answers are cached for ``ttl_seconds``. The cache is short because membership is what
authorizes an approval: someone removed from the on-call group must stop being able to
approve within a minute, not within a Lambda's lifetime.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from slack_sdk.errors import SlackApiError, SlackClientError

from chalicelib.approvals.errors import SlackUnavailable
from chalicelib.approvals.model import SlackUser

T = TypeVar("T")


class SlackDirectory:
    """Looks up Slack users and user groups through a ``slack_sdk.WebClient``."""

    def __init__(
        self, client: Any, *, ttl_seconds: float = 60, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], tuple[float, Any]] = {}

    def user(self, user_id: str) -> SlackUser:
        """The member with this id (``users.info``); ``SlackUnavailable`` if Slack won't say."""
        return self._cached(("user", user_id), lambda: self._fetch_user(user_id))

    def group_members(self, handle_or_id: str) -> frozenset[str]:
        """Member ids of a user group named by handle (``platform-oncall``, ``@platform-oncall``)
        or id (``S0PLATFORM``). An unknown or disabled group has no members: fail closed.
        """
        wanted = handle_or_id.removeprefix("@")
        groups = self._cached(("groups", ""), self._fetch_groups)
        group_id = groups.get(wanted) or (wanted if wanted in groups.values() else None)
        if group_id is None:
            return frozenset()
        return self._cached(("members", group_id), lambda: self._fetch_members(group_id))

    def _cached(self, key: tuple[str, str], fetch: Callable[[], T]) -> T:
        now = self._clock()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                value: T = hit[1]
                return value
        # Fetched outside the lock: a slow Slack must not serialise every other lookup.
        value = fetch()
        with self._lock:
            self._cache[key] = (now + self._ttl, value)
        return value

    def _fetch_user(self, user_id: str) -> SlackUser:
        answer = self._api("users.info", lambda: self._client.users_info(user=user_id))
        user = answer.get("user") or {}
        profile = user.get("profile") or {}
        email = profile.get("email")
        name = (
            profile.get("display_name") or user.get("name") or profile.get("real_name") or user_id
        )
        return SlackUser(
            id=str(user.get("id") or user_id),
            name=str(name),
            email=email if isinstance(email, str) and email else None,
            deleted=bool(user.get("deleted")),
            is_bot=bool(user.get("is_bot")),
        )

    def _fetch_groups(self) -> dict[str, str]:
        """Handle -> id of every enabled user group."""
        answer = self._api("usergroups.list", lambda: self._client.usergroups_list())
        return {
            str(g["handle"]): str(g["id"])
            for g in answer.get("usergroups") or ()
            if g.get("handle") and g.get("id")
        }

    def _fetch_members(self, group_id: str) -> frozenset[str]:
        answer = self._api(
            "usergroups.users.list", lambda: self._client.usergroups_users_list(usergroup=group_id)
        )
        return frozenset(str(u) for u in answer.get("users") or ())

    @staticmethod
    def _api(method: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            raise SlackUnavailable(
                f"Slack {method} failed ({error or exc}); eksgate cannot tell who is clicking "
                "or who may approve, so no decision is taken. Try again in a moment"
            ) from exc
        except (SlackClientError, OSError) as exc:
            raise SlackUnavailable(
                f"Slack {method} could not be reached ({exc}); eksgate cannot tell who is "
                "clicking or who may approve, so no decision is taken. Try again in a moment"
            ) from exc
