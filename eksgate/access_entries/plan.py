"""Desired vs actual access entries -> the changes to make, and how to show them (pure).

Only entries tagged ``managed-by=eksgate`` are ever changed or deleted. An entry eksgate does not
manage is never touched: if it belongs to a role eksgate wants, the plan holds a CONFLICT that
apply refuses, and a person decides (delete it, or tag it ``managed-by=eksgate`` to hand it over).
Entries that CloudFormation made from ``eksgate infra render`` carry the same tag; when they
would need a change they are reported as conflicts too, so the stack stays their only owner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from eksgate.access_entries.model import (
    MANAGED_BY_TAG,
    MANAGED_BY_VALUE,
    POLICIES_TAG,
    AccessScope,
    ActualEntry,
    DesiredEntry,
    policy_name,
)


class Action(StrEnum):
    CREATE = "create"
    ASSOCIATE = "associate"
    UPDATE_SCOPE = "update-scope"
    UPDATE_TAGS = "update-tags"
    DISASSOCIATE = "disassociate"
    DELETE = "delete"
    CONFLICT = "conflict"


@dataclass(frozen=True)
class Change:
    """One step of a plan. Which fields matter depends on ``action``:

    CREATE: ``entry_type``, ``tags``; ASSOCIATE: ``policy_arn``, ``scope``; UPDATE_SCOPE:
    ``policy_arn``, ``old_scope``, ``scope``; UPDATE_TAGS: ``access_entry_arn``, ``old_tags``,
    ``tags`` (only eksgate's own keys); DISASSOCIATE: ``policy_arn``, ``old_scope``; DELETE: -;
    CONFLICT: ``reason``.
    """

    action: Action
    principal_arn: str
    policy_arn: str = ""
    scope: AccessScope | None = None
    old_scope: AccessScope | None = None
    entry_type: str = "STANDARD"
    tags: Mapping[str, str] = field(default_factory=dict, hash=False)
    old_tags: Mapping[str, str] = field(default_factory=dict, hash=False)
    access_entry_arn: str = ""
    reason: str = ""

    def describe(self) -> str:
        """One line, terraform-style: ``+`` adds, ``~`` changes in place, ``-`` removes."""
        who = self.principal_arn
        policy = policy_name(self.policy_arn)
        if self.action is Action.CREATE:
            return (
                f"+ create access entry {who} (type {self.entry_type}, policies: "
                f"{self.tags.get(POLICIES_TAG, '') or '-'})"
            )
        if self.action is Action.ASSOCIATE:
            return f"+ associate {policy} with {who} : {_describe(self.scope)}"
        if self.action is Action.UPDATE_SCOPE:
            return (
                f"~ update scope of {policy} on {who} : {_scope_change(self.old_scope, self.scope)}"
            )
        if self.action is Action.UPDATE_TAGS:
            changes = ", ".join(
                f"{k} {self.old_tags.get(k, '')!r} -> {v!r}" for k, v in sorted(self.tags.items())
            )
            return f"~ update tags of {who} : {changes}"
        if self.action is Action.DISASSOCIATE:
            was = f" (was {self.old_scope.describe()})" if self.old_scope else ""
            return f"- disassociate {policy} from {who}{was}"
        if self.action is Action.DELETE:
            return f"- delete access entry {who}"
        return f"! conflict on {who} : {self.reason}"


def _describe(scope: AccessScope | None) -> str:
    return scope.describe() if scope else "-"


def _scope_change(old: AccessScope | None, new: AccessScope | None) -> str:
    if old and new and old.type == new.type == "namespace":
        return f"namespaces [{', '.join(old.namespaces)}] -> [{', '.join(new.namespaces)}]"
    return f"{_describe(old)} -> {_describe(new)}"


def plan(desired: Sequence[DesiredEntry], actual: Sequence[ActualEntry]) -> list[Change]:
    """The changes that turn ``actual`` into ``desired``, in the order apply makes them.

    Per principal (sorted by ARN): create, then associate / update scope, then disassociate,
    so a role never loses a permission it keeps while its entry is being reshaped. Entries
    eksgate manages but no longer wants are deleted (EKS drops their associations with them).
    """
    wanted = {d.principal_arn: d for d in desired}
    present = {a.principal_arn: a for a in actual}
    changes: list[Change] = []
    for principal in sorted(set(wanted) | set(present)):
        want, have = wanted.get(principal), present.get(principal)
        if want is None:
            if have is not None and have.managed and have.cloudformation_stack:
                changes.append(
                    Change(
                        Action.CONFLICT,
                        principal,
                        reason=(
                            "no policy wants this entry any more, but it belongs to CloudFormation "
                            f"stack {have.cloudformation_stack!r}; remove it through that stack"
                        ),
                    )
                )
            elif have is not None and have.managed:
                changes.append(Change(Action.DELETE, principal))
            continue
        if have is None:
            changes.append(Change(Action.CREATE, principal, entry_type=want.type, tags=want.tags))
            changes.extend(
                Change(Action.ASSOCIATE, principal, a.policy_arn, scope=a.scope)
                for a in want.associations
            )
            continue
        conflict = _conflict(want, have)
        if conflict:
            changes.append(Change(Action.CONFLICT, principal, reason=conflict))
        elif not have.cloudformation_stack:
            changes.extend(_entry_changes(want, have))
    return changes


def _conflict(want: DesiredEntry, have: ActualEntry) -> str:
    if have.managed and have.cloudformation_stack and _entry_changes(want, have):
        return (
            f"the entry differs from the policies but belongs to CloudFormation stack "
            f"{have.cloudformation_stack!r} (eksgate infra render); render and deploy the "
            "stack again instead"
        )
    if not have.managed:
        return (
            f"an access entry for this role already exists and is not managed by eksgate "
            f"(no tag {MANAGED_BY_TAG}={MANAGED_BY_VALUE}); eksgate will not change it. "
            f"Delete it, or tag it {MANAGED_BY_TAG}={MANAGED_BY_VALUE} to hand it over"
        )
    if have.type != want.type:
        return (
            f"the eksgate-managed entry has type {have.type}, not {want.type}; an entry's "
            "type cannot change in place: delete the entry and apply again"
        )
    return ""


def _entry_changes(want: DesiredEntry, have: ActualEntry) -> list[Change]:
    principal = want.principal_arn
    changes: list[Change] = []
    stale_tags = {k: v for k, v in want.tags.items() if have.tags.get(k) != v}
    if stale_tags:
        changes.append(
            Change(
                Action.UPDATE_TAGS,
                principal,
                tags=stale_tags,
                old_tags={k: have.tags.get(k, "") for k in stale_tags},
                access_entry_arn=have.access_entry_arn,
            )
        )
    for association in want.associations:
        current = have.association(association.policy_arn)
        if current is None:
            changes.append(
                Change(Action.ASSOCIATE, principal, association.policy_arn, scope=association.scope)
            )
        elif current.scope != association.scope:
            changes.append(
                Change(
                    Action.UPDATE_SCOPE,
                    principal,
                    association.policy_arn,
                    scope=association.scope,
                    old_scope=current.scope,
                )
            )
    for association in sorted(have.associations):
        if want.association(association.policy_arn) is None:
            changes.append(
                Change(
                    Action.DISASSOCIATE,
                    principal,
                    association.policy_arn,
                    old_scope=association.scope,
                )
            )
    return changes


_SUMMARY = (
    (Action.CREATE, "{} to create"),
    (Action.ASSOCIATE, "{} to associate"),
    (Action.UPDATE_SCOPE, "{} scope(s) to update"),
    (Action.UPDATE_TAGS, "{} tag set(s) to update"),
    (Action.DISASSOCIATE, "{} to disassociate"),
    (Action.DELETE, "{} to delete"),
    (Action.CONFLICT, "{} conflict(s)"),
)


def render_plan(changes: Sequence[Change]) -> str:
    """The plan for a person: one line per change and a summary, or ``No changes.``."""
    if not changes:
        return "No changes."
    lines = [change.describe() for change in changes]
    counts = {action: sum(1 for c in changes if c.action is action) for action, _ in _SUMMARY}
    summary = ", ".join(text.format(counts[action]) for action, text in _SUMMARY if counts[action])
    lines += ["", f"Plan: {summary}."]
    if counts[Action.CONFLICT]:
        lines.append("apply refuses a plan with conflicts; resolve them first.")
    return "\n".join(lines)
