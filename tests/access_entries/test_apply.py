"""Reading and applying against an in-memory EKS held to botocore's model of the API."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from eksgate.access_entries import (
    AccessScope,
    ApplyError,
    ApplyRefused,
    desired_entries,
    plan,
    render_plan,
)
from eksgate.access_entries.eks import apply, read_actual
from eksgate.access_entries.errors import AccessEntryError
from tests.access_entries.fake_eks import FakeEks
from tests.access_entries.policies import EDIT, VIEW, policy, read, role_arn, write

CLUSTER = "prod-eu"


def converge(eks: FakeEks, policies, cluster: str = CLUSTER) -> list[str]:
    """plan + apply, returning the progress lines."""
    lines: list[str] = []
    changes = plan(desired_entries(policies, cluster), read_actual(eks, cluster))
    apply(eks, cluster, changes, lines.append)
    return lines


def state(eks: FakeEks, cluster: str = CLUSTER) -> dict[str, dict[str, AccessScope]]:
    return {
        e.principal_arn: {a.policy_name: a.scope for a in e.associations}
        for e in read_actual(eks, cluster)
    }


def test_an_empty_cluster_gets_an_entry_per_role():
    eks = FakeEks()
    lines = converge(
        eks,
        [
            policy("ci", "ci", [read(["pods"], ["shop"]), write(["deployments"], ["shop"])]),
            policy("dash", "dash", [read(["pods"])]),
        ],
    )
    assert lines[0] == f"[1/5] + create access entry {role_arn('ci')} (type STANDARD, policies: ci)"
    assert len(lines) == 5
    assert state(eks) == {
        role_arn("ci"): {
            "AmazonEKSEditPolicy": AccessScope.of_namespaces(["shop"]),
            "AmazonEKSViewPolicy": AccessScope.of_namespaces(["shop"]),
        },
        role_arn("dash"): {"AmazonEKSViewPolicy": AccessScope.cluster()},
    }
    create = next(p for name, p in eks.calls if name == "create_access_entry")
    assert create["type"] == "STANDARD"
    assert create["tags"] == {"managed-by": "eksgate", "eksgate-policies": "ci"}


def test_a_second_apply_has_nothing_to_do():
    eks = FakeEks()
    policies = [policy("ci", "ci", [read(["pods"], ["shop"]), write(["jobs"], ["shop"])])]
    converge(eks, policies)
    eks.calls.clear()
    assert (
        render_plan(plan(desired_entries(policies, CLUSTER), read_actual(eks, CLUSTER)))
        == "No changes."
    )
    assert converge(eks, policies) == []
    assert eks.mutating_calls() == []


def test_a_widened_scope_is_reassociated_in_place():
    eks = FakeEks()
    converge(eks, [policy("ci", "ci", [read(["pods"], ["shop"])])])
    eks.calls.clear()
    lines = converge(eks, [policy("ci", "ci", [read(["pods"], ["shop", "payments"])])])
    assert lines == [
        (
            f"[1/1] ~ update scope of AmazonEKSViewPolicy on {role_arn('ci')} : "
            "namespaces [shop] -> [payments, shop]"
        )
    ]
    assert eks.mutating_calls() == ["associate_access_policy"]
    assert state(eks)[role_arn("ci")]["AmazonEKSViewPolicy"] == AccessScope.of_namespaces(
        ["payments", "shop"]
    )


def test_a_narrowed_scope_and_a_switch_to_cluster_scope():
    eks = FakeEks()
    converge(eks, [policy("ci", "ci", [read(["pods"], ["shop", "payments"])])])
    converge(eks, [policy("ci", "ci", [read(["pods"], ["shop"])])])
    assert state(eks)[role_arn("ci")] == {
        "AmazonEKSViewPolicy": AccessScope.of_namespaces(["shop"])
    }
    converge(eks, [policy("ci", "ci", [read(["pods"])])])
    assert state(eks)[role_arn("ci")] == {"AmazonEKSViewPolicy": AccessScope.cluster()}


def test_view_becomes_edit_when_a_policy_starts_writing():
    eks = FakeEks()
    converge(
        eks,
        [
            policy(
                "ci",
                "ci",
                [write(["deployments"], ["shop"], effect="allow", verbs=["get", "list"])],
            )
        ],
    )
    assert set(state(eks)[role_arn("ci")]) == {"AmazonEKSViewPolicy"}
    eks.calls.clear()
    converge(
        eks,
        [
            policy(
                "ci",
                "ci",
                [write(["deployments"], ["shop"], effect="allow", verbs=["get", "list", "patch"])],
            )
        ],
    )
    assert eks.mutating_calls() == ["associate_access_policy", "disassociate_access_policy"]
    assert [p["policyArn"] for _, p in eks.calls if "policyArn" in p] == [EDIT, VIEW]
    assert set(state(eks)[role_arn("ci")]) == {"AmazonEKSEditPolicy"}


def test_a_removed_policy_loses_its_managed_entry_and_a_hand_made_entry_stays():
    eks = FakeEks()
    eks.add_entry(
        CLUSTER,
        role_arn("break-glass"),
        tags={"owner": "platform"},
        policies={EDIT: {"type": "cluster"}},
    )
    converge(
        eks,
        [
            policy("ci", "ci", [read(["pods"], ["shop"])]),
            policy("old", "old", [read(["pods"], ["shop"])]),
        ],
    )
    lines = converge(eks, [policy("ci", "ci", [read(["pods"], ["shop"])])])
    assert lines == [f"[1/1] - delete access entry {role_arn('old')}"]
    assert set(state(eks)) == {role_arn("break-glass"), role_arn("ci")}
    raw = eks.clusters[CLUSTER][role_arn("break-glass")]
    assert raw["tags"] == {"owner": "platform"} and list(raw["policies"]) == [EDIT]


def test_a_hand_made_entry_for_a_wanted_role_is_refused_and_nothing_changes():
    eks = FakeEks()
    eks.add_entry(CLUSTER, role_arn("ci"), policies={EDIT: {"type": "cluster"}})
    changes = plan(
        desired_entries(
            [
                policy("ci", "ci", [read(["pods"], ["a"])]),
                policy("new", "new", [read(["pods"], ["a"])]),
            ],
            CLUSTER,
        ),
        read_actual(eks, CLUSTER),
    )
    with pytest.raises(ApplyRefused, match="not managed by eksgate"):
        apply(eks, CLUSTER, changes, lambda line: None)
    assert eks.mutating_calls() == []


def test_a_role_shared_by_two_policies_is_one_entry_and_follows_both():
    eks = FakeEks()
    converge(eks, [policy("team-a", "shared", [read(["pods"], ["a"])])])
    lines = converge(
        eks,
        [
            policy("team-a", "shared", [read(["pods"], ["a"])]),
            policy("team-b", "shared", [read(["pods"], ["b"])]),
        ],
    )
    assert [line.split("] ", 1)[1][:16] for line in lines] == [
        "~ update tags of",
        "~ update scope o",
    ]
    [entry] = read_actual(eks, CLUSTER)
    assert entry.tags["eksgate-policies"] == "team-a team-b"
    assert entry.associations[0].scope == AccessScope.of_namespaces(["a", "b"])


def test_apply_stops_at_the_first_failure_and_says_how_far_it_got():
    eks = FakeEks()
    eks.fail("associate_access_policy", "InvalidParameterException", "bad scope", after=1)
    changes = plan(
        desired_entries(
            [policy("ci", "ci", [read(["pods"], ["shop"]), write(["jobs"], ["shop"])])], CLUSTER
        ),
        read_actual(eks, CLUSTER),
    )
    lines: list[str] = []
    with pytest.raises(ApplyError) as raised:
        apply(eks, CLUSTER, changes, lines.append)
    message = str(raised.value)
    assert "step 3/3 failed: + associate AmazonEKSViewPolicy" in message
    assert "InvalidParameterException: bad scope" in message
    assert "2 earlier step(s) were applied" in message
    assert len(lines) == 3
    # What remains is exactly what the plan shows next time.
    [remaining] = plan(
        desired_entries(
            [policy("ci", "ci", [read(["pods"], ["shop"]), write(["jobs"], ["shop"])])], CLUSTER
        ),
        read_actual(eks, CLUSTER),
    )
    assert remaining.policy_arn == VIEW


def test_reading_a_missing_cluster_is_a_clear_error():
    with pytest.raises(
        AccessEntryError,
        match="cannot read the access entries of EKS cluster 'nope': ResourceNotFoundException",
    ):
        read_actual(FakeEks(), "nope")


def test_reads_page_through_every_list():
    eks = FakeEks(page_size=1)
    converge(
        eks,
        [
            policy(f"p{i}", f"r{i}", [read(["pods"], ["a"]), write(["jobs"], ["a"])])
            for i in range(3)
        ],
    )
    eks.calls.clear()
    assert len(read_actual(eks, CLUSTER)) == 3
    assert sum(1 for name, p in eks.calls if name == "list_access_entries") == 3
    assert all(len(e.associations) == 2 for e in read_actual(eks, CLUSTER))


def test_the_fake_holds_requests_to_the_real_api_model():
    eks = FakeEks()
    with pytest.raises(ParamValidationError):
        eks.create_access_entry(
            clusterName=CLUSTER, principalArn=role_arn("r"), tags={"managed-by": 1}
        )
    eks.create_access_entry(clusterName=CLUSTER, principalArn=role_arn("r"))
    with pytest.raises(ParamValidationError):
        eks.associate_access_policy(
            clusterName=CLUSTER, principalArn=role_arn("r"), policyArn=VIEW
        )  # accessScope is required
    with pytest.raises(ClientError) as raised:
        eks.create_access_entry(clusterName=CLUSTER, principalArn=role_arn("r"))
    assert raised.value.response["Error"]["Code"] == "ResourceInUseException"
