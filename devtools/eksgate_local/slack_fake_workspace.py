"""The workspace a local Slack fake serves: team, bot, users, channels and user groups.

Development and test tool: production talks to real Slack. These are plain values; the fake
reads them and never changes them, so a test can build its own ``Workspace`` (for example a
deactivated approver, a private channel the bot is not in) and hand it to ``SlackFake``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class FakeUser:
    """A Slack member (human or bot) as ``users.info`` describes it."""

    id: str
    name: str
    real_name: str
    email: str | None = None
    is_bot: bool = False
    deleted: bool = False
    is_admin: bool = False
    tz: str = "Europe/Berlin"
    tz_label: str = "Central European Summer Time"
    tz_offset: int = 7200
    title: str = ""

    def to_slack(self, team_id: str) -> dict[str, Any]:
        """The ``user`` object of ``users.info`` / ``users.lookupByEmail``."""
        profile: dict[str, Any] = {
            "title": self.title,
            "real_name": self.real_name,
            "real_name_normalized": self.real_name,
            "display_name": self.name,
            "display_name_normalized": self.name,
            "image_48": f"https://example.invalid/avatars/{self.id}_48.png",
            "team": team_id,
        }
        # Real Slack leaves email out for bots and when the app lacks users:read.email.
        if self.email is not None:
            profile["email"] = self.email
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "deleted": self.deleted,
            "real_name": self.real_name,
            "tz": self.tz,
            "tz_label": self.tz_label,
            "tz_offset": self.tz_offset,
            "profile": profile,
            "is_admin": self.is_admin,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 1_700_000_000,
        }


@dataclass(frozen=True)
class FakeChannel:
    """A conversation the bot can post to. ``is_member=False`` makes posts fail as in Slack."""

    id: str
    name: str
    is_private: bool = False
    is_member: bool = True
    is_archived: bool = False
    topic: str = ""
    purpose: str = ""

    def to_slack(self) -> dict[str, Any]:
        """The ``channel`` object of ``conversations.info``."""
        return {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "is_archived": self.is_archived,
            "is_general": False,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "is_member": self.is_member,
            "created": 1_700_000_000,
            "creator": "",
            "topic": {"value": self.topic, "creator": "", "last_set": 0},
            "purpose": {"value": self.purpose, "creator": "", "last_set": 0},
        }


@dataclass(frozen=True)
class FakeUserGroup:
    """A user group (``@handle``): approvers are often named by group in policies."""

    id: str
    handle: str
    name: str
    users: tuple[str, ...]
    description: str = ""

    def to_slack(self, team_id: str, *, include_users: bool, include_count: bool) -> dict[str, Any]:
        """The usergroup object of ``usergroups.list``."""
        group: dict[str, Any] = {
            "id": self.id,
            "team_id": team_id,
            "is_usergroup": True,
            "is_subteam": True,
            "name": self.name,
            "description": self.description,
            "handle": self.handle,
            "is_external": False,
            "date_create": 1_700_000_000,
            "date_update": 1_700_000_000,
            "date_delete": 0,
            "auto_type": None,
            "created_by": "",
            "updated_by": "",
            "deleted_by": None,
            "prefs": {"channels": [], "groups": []},
        }
        if include_users:
            group["users"] = list(self.users)
        if include_count:
            group["user_count"] = len(self.users)
        return group


@dataclass(frozen=True)
class Workspace:
    """Everything the fake knows about the Slack workspace it pretends to be."""

    team_id: str
    team_name: str
    domain: str
    app_id: str
    bot_id: str
    bot_user: FakeUser
    users: tuple[FakeUser, ...]
    channels: tuple[FakeChannel, ...]
    usergroups: tuple[FakeUserGroup, ...] = field(default=())

    def all_users(self) -> tuple[FakeUser, ...]:
        """Humans and the app's own bot user."""
        return (*self.users, self.bot_user)

    def user(self, user_id: str) -> FakeUser | None:
        """The member with this id, or None."""
        return next((u for u in self.all_users() if u.id == user_id), None)

    def user_by_email(self, email: str) -> FakeUser | None:
        """The active member with this email (case-insensitive, as Slack matches), or None."""
        wanted = email.strip().lower()
        return next(
            (
                u
                for u in self.all_users()
                if u.email and u.email.lower() == wanted and not u.deleted
            ),
            None,
        )

    def channel(self, ref: str) -> FakeChannel | None:
        """The channel by id, ``name`` or ``#name``, or None."""
        name = ref.removeprefix("#")
        return next((c for c in self.channels if ref == c.id or name == c.name), None)

    def usergroup(self, usergroup_id: str) -> FakeUserGroup | None:
        """The user group with this id, or None."""
        return next((g for g in self.usergroups if g.id == usergroup_id), None)

    def with_users(self, *users: FakeUser) -> Workspace:
        """A copy with these users added (or replaced, matched by id)."""
        ids = {u.id for u in users}
        return replace(self, users=(*(u for u in self.users if u.id not in ids), *users))


APPROVALS_CHANNEL_ID = "C0APPROVALS"
APPROVALS_CHANNEL_NAME = "eksgate-approvals"
PLATFORM_GROUP_ID = "S0PLATFORM"
PLATFORM_GROUP_HANDLE = "platform-oncall"


def default_workspace() -> Workspace:
    """The demo workspace: one approvals channel, three engineers and an outsider.

    Alice requests changes, Bob and Carol are the platform on-call approvers (the
    ``platform-oncall`` group), Mallory is a member who must not be able to approve.
    """
    return Workspace(
        team_id="T0EKSGATE",
        team_name="eksgate local",
        domain="eksgate-local",
        app_id="A0EKSGATE",
        bot_id="B0EKSGATE",
        bot_user=FakeUser(id="U0EKSGATEBOT", name="eksgate", real_name="eksgate", is_bot=True),
        users=(
            FakeUser("U0ALICE", "alice", "Alice Engineer", "alice@example.com", title="Engineer"),
            FakeUser("U0BOB", "bob", "Bob Platform", "bob@example.com", title="Platform on-call"),
            FakeUser("U0CAROL", "carol", "Carol Platform", "carol@example.com", title="Platform"),
            FakeUser("U0MALLORY", "mallory", "Mallory Outsider", "mallory@example.com"),
        ),
        channels=(
            FakeChannel(
                APPROVALS_CHANNEL_ID,
                APPROVALS_CHANNEL_NAME,
                purpose="eksgate approval requests",
            ),
        ),
        usergroups=(
            FakeUserGroup(
                PLATFORM_GROUP_ID,
                PLATFORM_GROUP_HANDLE,
                "Platform on-call",
                ("U0BOB", "U0CAROL"),
                description="Approves risky changes to production clusters",
            ),
        ),
    )
