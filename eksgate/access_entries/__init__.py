"""EKS access entries for the IAM roles that policies name: the ceiling below the gateway.

The gateway decides every request, but the role it forwards with is what the cluster itself
enforces. Each policy role gets an access entry whose AWS managed access policies and namespace
scopes follow from the policy's allow and approve rules, so a leaked role session (or a direct
token) can do no more than the policies could ever approve.

- ``desired``: policies -> the entries a cluster should have (pure)
- ``plan``: desired vs actual -> the changes, and how to print them (pure)
- ``eks``: read the actual entries and apply changes through a boto3 EKS client
- ``cmd``: ``eksgate access-entries plan|apply``
"""

from eksgate.access_entries.desired import desired_entries
from eksgate.access_entries.errors import (
    AccessEntryError,
    ApplyError,
    ApplyRefused,
    ClusterAdminRequired,
)
from eksgate.access_entries.model import (
    AccessScope,
    ActualEntry,
    Association,
    DesiredEntry,
)
from eksgate.access_entries.plan import Action, Change, plan, render_plan

__all__ = [
    "AccessEntryError",
    "AccessScope",
    "Action",
    "ActualEntry",
    "ApplyError",
    "ApplyRefused",
    "Association",
    "Change",
    "ClusterAdminRequired",
    "DesiredEntry",
    "desired_entries",
    "plan",
    "render_plan",
]
