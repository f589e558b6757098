"""Access entries on a real cluster, through a boto3 EKS client the caller passes in.

Reads page through every list call. Applying goes step by step in the plan's order, reporting
each step before it runs, and stops at the first failure with a message naming that step and
how far it got: no step is retried or skipped quietly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from eksgate.access_entries.errors import AccessEntryError, ApplyError, ApplyRefused
from eksgate.access_entries.model import (
    AccessScope,
    ActualEntry,
    Association,
)
from eksgate.access_entries.plan import Action, Change


def _reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'Error')}: {error.get('Message', '')}".rstrip(": ")
    return str(exc)


def _pages(call: Callable[..., dict[str, Any]], key: str, **params: Any) -> list[Any]:
    items: list[Any] = []
    while True:
        page = call(**params)
        items.extend(page.get(key) or [])
        token = page.get("nextToken")
        if not token:
            return items
        params["nextToken"] = token


def read_actual(eks: Any, cluster: str) -> list[ActualEntry]:
    """Every access entry of EKS cluster ``cluster``, sorted by principal ARN.

    Associated access policies are read for eksgate-managed entries only: the others are
    never changed, so their policies do not matter to a plan (and need not be readable).
    """
    try:
        principals = _pages(eks.list_access_entries, "accessEntries", clusterName=cluster)
        entries = []
        for principal in sorted(set(principals)):
            try:
                data = eks.describe_access_entry(clusterName=cluster, principalArn=principal)[
                    "accessEntry"
                ]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                    continue  # deleted between the list and the describe: nothing to plan
                raise
            entry = ActualEntry(
                principal_arn=principal,
                type=data.get("type", ""),
                tags=dict(data.get("tags") or {}),
                access_entry_arn=data.get("accessEntryArn", ""),
            )
            if entry.managed:
                associated = _pages(
                    eks.list_associated_access_policies,
                    "associatedAccessPolicies",
                    clusterName=cluster,
                    principalArn=principal,
                )
                entry = ActualEntry(
                    principal_arn=entry.principal_arn,
                    type=entry.type,
                    tags=entry.tags,
                    access_entry_arn=entry.access_entry_arn,
                    associations=tuple(
                        sorted(
                            Association(
                                a["policyArn"], AccessScope.from_api(a.get("accessScope", {}))
                            )
                            for a in associated
                        )
                    ),
                )
            entries.append(entry)
        return entries
    except (ClientError, BotoCoreError) as exc:
        raise AccessEntryError(
            f"cannot read the access entries of EKS cluster {cluster!r}: {_reason(exc)}"
        ) from None


def apply(
    eks: Any, cluster: str, changes: Sequence[Change], progress: Callable[[str], None]
) -> None:
    """Make ``changes`` on EKS cluster ``cluster``, announcing each step through ``progress``.

    Refuses (ApplyRefused, before any call) when the plan holds conflicts. On the first
    failing call raises ApplyError naming the step, what was already applied and what was not.
    """
    conflicts = [c for c in changes if c.action is Action.CONFLICT]
    if conflicts:
        raise ApplyRefused(
            "refusing to apply: nothing was changed because of these conflicts:\n"
            + "\n".join(f"  {c.describe()}" for c in conflicts)
        )
    total = len(changes)
    for number, change in enumerate(changes, start=1):
        step = change.describe()
        progress(f"[{number}/{total}] {step}")
        try:
            _perform(eks, cluster, change)
        except (ClientError, BotoCoreError, AccessEntryError) as exc:
            raise ApplyError(
                f"step {number}/{total} failed: {step}\n  {_reason(exc)}\n"
                f"{number - 1} earlier step(s) were applied; this one and the {total - number} "
                "after it were not. Run `eksgate access-entries plan` to see what remains."
            ) from None


def _perform(eks: Any, cluster: str, change: Change) -> None:
    who = {"clusterName": cluster, "principalArn": change.principal_arn}
    if change.action is Action.CREATE:
        eks.create_access_entry(**who, type=change.entry_type, tags=dict(change.tags))
    elif change.action in (Action.ASSOCIATE, Action.UPDATE_SCOPE):
        # AssociateAccessPolicy replaces the scope of an existing association.
        if change.scope is None:
            raise AccessEntryError(f"{change.describe()}: the change has no scope")
        eks.associate_access_policy(
            **who, policyArn=change.policy_arn, accessScope=change.scope.to_api()
        )
    elif change.action is Action.UPDATE_TAGS:
        if not change.access_entry_arn:
            raise AccessEntryError(f"{change.describe()}: the entry's ARN is unknown")
        eks.tag_resource(resourceArn=change.access_entry_arn, tags=dict(change.tags))
    elif change.action is Action.DISASSOCIATE:
        eks.disassociate_access_policy(**who, policyArn=change.policy_arn)
    elif change.action is Action.DELETE:
        eks.delete_access_entry(**who)
    else:
        raise AccessEntryError(f"cannot apply {change.describe()}")
