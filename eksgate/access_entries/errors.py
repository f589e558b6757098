"""What can go wrong computing or applying access entries, each with what to do about it."""

from __future__ import annotations


class AccessEntryError(Exception):
    """Base class: ``str()`` is a message for the operator, never a traceback."""


class ClusterAdminRequired(AccessEntryError):
    """A rule could only be honoured with AmazonEKSClusterAdminPolicy, which eksgate never grants.

    ``problems`` names each policy and rule, so one run reports all of them.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__(
            "these rules would need AmazonEKSClusterAdminPolicy, which eksgate never associates; "
            "narrow them (namespaces, resources, verbs) or grant that access outside eksgate:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )
        self.problems = problems


class ApplyRefused(AccessEntryError):
    """The plan holds changes eksgate will not make (conflicts); nothing was changed."""


class ApplyError(AccessEntryError):
    """A step failed; the message names it and how many steps before it were applied."""


class StageConfigError(AccessEntryError):
    """.chalice/config.json does not say what is needed; the message names the stage and key."""
