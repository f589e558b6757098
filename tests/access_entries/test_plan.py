"""Desired vs actual -> changes, and how they read (pure: no EKS involved)."""

from __future__ import annotations

from eksgate.access_entries import (
    AccessScope,
    Action,
    ActualEntry,
    Association,
    DesiredEntry,
    plan,
    render_plan,
)
from eksgate.access_entries.model import policies_tag_value
from tests.access_entries.policies import EDIT, VIEW, role_arn

MANAGED = {"managed-by": "eksgate", "eksgate-policies": "p"}
SHOP = AccessScope.of_namespaces(["shop"])


def desired(*associations: Association, role: str = "r", policies=("p",)) -> DesiredEntry:
    return DesiredEntry(role_arn(role), tuple(policies), tuple(associations))


def actual(
    *associations: Association, role: str = "r", tags=MANAGED, type="STANDARD"
) -> ActualEntry:
    return ActualEntry(
        role_arn(role),
        type,
        dict(tags),
        tuple(associations),
        access_entry_arn=f"arn:aws:eks:eu-west-1:123456789012:access-entry/x/{role}",
    )


def test_nothing_to_do_reads_no_changes():
    state = [Association(VIEW, SHOP)]
    assert plan([desired(*state)], [actual(*state)]) == []
    assert render_plan([]) == "No changes."


def test_a_new_role_is_created_then_associated():
    changes = plan([desired(Association(VIEW, SHOP))], [])
    assert [c.action for c in changes] == [Action.CREATE, Action.ASSOCIATE]
    text = render_plan(changes)
    assert f"+ create access entry {role_arn('r')}" in text
    assert f"+ associate AmazonEKSViewPolicy with {role_arn('r')} : namespaces [shop]" in text
    assert text.endswith("Plan: 1 to create, 1 to associate.")


def test_a_wider_scope_is_an_update_in_place():
    wider = AccessScope.of_namespaces(["shop", "payments"])
    [change] = plan([desired(Association(VIEW, wider))], [actual(Association(VIEW, SHOP))])
    assert change.action is Action.UPDATE_SCOPE
    assert change.describe() == (
        f"~ update scope of AmazonEKSViewPolicy on {role_arn('r')} : "
        "namespaces [shop] -> [payments, shop]"
    )


def test_a_scope_change_between_kinds_says_both():
    [change] = plan(
        [desired(Association(VIEW, AccessScope.cluster()))], [actual(Association(VIEW, SHOP))]
    )
    assert change.describe().endswith("namespaces [shop] -> cluster")


def test_a_changed_policy_is_associated_before_the_old_one_goes():
    changes = plan([desired(Association(EDIT, SHOP))], [actual(Association(VIEW, SHOP))])
    assert [(c.action, c.policy_arn) for c in changes] == [
        (Action.ASSOCIATE, EDIT),
        (Action.DISASSOCIATE, VIEW),
    ]
    assert "- disassociate AmazonEKSViewPolicy from" in render_plan(changes)


def test_a_managed_entry_no_policy_wants_is_deleted_an_unmanaged_one_is_left_alone():
    changes = plan([], [actual(role="gone"), actual(role="admin", tags={"team": "platform"})])
    assert [(c.action, c.principal_arn) for c in changes] == [(Action.DELETE, role_arn("gone"))]
    assert render_plan(changes).startswith(f"- delete access entry {role_arn('gone')}")


def test_an_unmanaged_entry_for_a_wanted_role_is_a_conflict():
    [change] = plan(
        [desired(Association(VIEW, SHOP))],
        [actual(Association(EDIT, AccessScope.cluster()), tags={})],
    )
    assert change.action is Action.CONFLICT
    text = render_plan([change])
    assert text.startswith(f"! conflict on {role_arn('r')} : ")
    assert "not managed by eksgate" in text and "apply refuses" in text


def test_entries_cloudformation_owns_are_conflicts_not_changes():
    stack_tags = {**MANAGED, "aws:cloudformation:stack-name": "eksgate-prod"}
    changes = plan(
        [desired(Association(EDIT, SHOP))],
        [actual(Association(VIEW, SHOP), tags=stack_tags), actual(role="old", tags=stack_tags)],
    )
    assert [c.action for c in changes] == [Action.CONFLICT, Action.CONFLICT]
    assert all("eksgate-prod" in c.reason for c in changes)
    # In step with the policies, the stack's entry is simply left as it is.
    assert (
        plan([desired(Association(VIEW, SHOP))], [actual(Association(VIEW, SHOP), tags=stack_tags)])
        == []
    )


def test_a_managed_entry_of_another_type_is_a_conflict():
    [change] = plan([desired()], [actual(type="EC2_LINUX")])
    assert change.action is Action.CONFLICT and "type EC2_LINUX" in change.reason


def test_stale_policy_tags_are_updated():
    [change] = plan([desired(policies=("p", "q"))], [actual()])
    assert change.action is Action.UPDATE_TAGS
    assert change.tags == {"eksgate-policies": "p q"}
    assert change.describe().endswith("eksgate-policies 'p' -> 'p q'")


def test_plans_are_ordered_by_principal_and_summarised():
    changes = plan(
        [desired(Association(VIEW, SHOP), role="b"), desired(role="a")], [actual(role="c")]
    )
    assert [c.principal_arn for c in changes] == [
        role_arn("a"),
        role_arn("b"),
        role_arn("b"),
        role_arn("c"),
    ]
    assert render_plan(changes).endswith("Plan: 2 to create, 1 to associate, 1 to delete.")


def test_the_policies_tag_fits_the_tag_limit():
    names = tuple(f"policy-number-{i:03d}" for i in range(40))
    value = policies_tag_value(names)
    assert len(value) <= 256
    assert value.startswith("policy-number-000 policy-number-001")
    kept = value.split(" ")[:-1]
    assert value.endswith(f" +{40 - len(kept)}")
