"""``eksgate access-entries plan|apply`` as an operator runs them."""

from __future__ import annotations

import argparse
import io

import pytest

from eksgate.access_entries.cmd import cmd_apply, cmd_plan
from tests.access_entries.fake_eks import FakeEks
from tests.access_entries.policies import document, read, role_arn, write, write_policies


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture()
def eks():
    return FakeEks(("prod-eu", "demo"))


def args(eks: FakeEks, policies=None, **extra) -> argparse.Namespace:
    regions: list[str | None] = []

    def factory(region: str | None) -> FakeEks:
        regions.append(region)
        return eks

    settings = {
        "cluster": "prod-eu",
        "policies": policies,
        "region": None,
        "yes": False,
        "eks_client_factory": factory,
        **extra,
    }
    namespace = argparse.Namespace(**settings)
    namespace.regions = regions
    return namespace


def run(command, namespace, **streams):
    out, err = io.StringIO(), io.StringIO()
    code = command(namespace, stdout=out, stderr=err, **streams)
    return code, out.getvalue(), err.getvalue()


def test_plan_on_the_shipped_policies_for_prod_eu(eks):
    code, out, err = run(cmd_plan, args(eks))
    assert code == 2, err
    assert "Access entries for cluster 'prod-eu' (EKS cluster 'prod-eu')" in out
    assert f"+ create access entry {role_arn('eksgate-ci-agent')}" in out
    assert f"+ create access entry {role_arn('eksgate-engineer')}" in out
    assert "eksgate-readonly" not in out  # a demo-only policy
    assert (
        "+ associate AmazonEKSAdminPolicy with "
        f"{role_arn('eksgate-engineer')} : namespaces [payments, shop]" in out
    )
    assert "AmazonEKSClusterAdminPolicy" not in out
    assert (
        f"role {role_arn('eksgate-ci-agent')}: reading and writing Secrets comes with "
        "AmazonEKSEditPolicy on namespaces [shop]" in out
    )
    assert "direct EKS tokens for this role (policy engineers) carry all of it" in out
    assert "Plan: 3 to create, 6 to associate." in out
    assert eks.mutating_calls() == []


def test_plan_exits_0_when_the_cluster_is_in_step(eks):
    assert run(cmd_apply, args(eks, yes=True))[0] == 0
    code, out, _ = run(cmd_plan, args(eks))
    assert code == 0
    assert out.rstrip().endswith("No changes.")


def test_the_stage_gives_the_region_and_eks_cluster_name(eks):
    namespace = args(eks, stage="prod")
    run(cmd_plan, namespace)
    assert namespace.regions == ["eu-west-1"]
    namespace = args(
        FakeEks(("real-name",)), stage="prod", eks_name="real-name", region="eu-central-1"
    )
    code, out, err = run(cmd_plan, namespace)
    assert code == 2, err
    assert namespace.regions == ["eu-central-1"]
    assert "(EKS cluster 'real-name' in eu-central-1)" in out


def test_an_unknown_stage_cluster_is_an_error(eks):
    namespace = args(eks, stage="prod")
    namespace.cluster = "nope"
    code, _, err = run(cmd_plan, namespace)
    assert code == 1
    assert "stage 'prod' has no cluster 'nope' in EKSGATE_CLUSTERS; it has: prod-eu" in err


def test_apply_with_yes_applies_and_reports_each_step(eks):
    code, out, err = run(cmd_apply, args(eks, yes=True))
    assert code == 0, err
    assert "[1/9] + create access entry" in out
    assert out.rstrip().endswith("Applied 9 change(s).")
    assert len(eks.clusters["prod-eu"]) == 3


def test_apply_without_yes_and_without_a_terminal_refuses(eks):
    code, _, err = run(cmd_apply, args(eks), stdin=io.StringIO("yes\n"))
    assert code == 1
    assert "refusing to apply without confirmation" in err and "--yes" in err
    assert eks.mutating_calls() == []


def test_apply_asks_at_a_terminal_and_only_yes_goes_ahead(eks):
    code, out, _ = run(cmd_apply, args(eks), stdin=Terminal("y\n"))
    assert code == 1
    assert "Only 'yes' is accepted" in out and "nothing was changed" in out
    assert eks.mutating_calls() == []
    code, out, _ = run(cmd_apply, args(eks), stdin=Terminal("yes\n"))
    assert code == 0
    assert "Applied 9 change(s)." in out


def test_apply_with_nothing_to_do_asks_nothing(eks):
    run(cmd_apply, args(eks, yes=True))
    code, out, _ = run(cmd_apply, args(eks), stdin=io.StringIO(""))
    assert code == 0 and "No changes." in out


def test_apply_refuses_a_plan_with_conflicts(eks, tmp_path):
    eks.add_entry("prod-eu", role_arn("eksgate-ci-agent"), tags={"owner": "someone"})
    code, out, err = run(cmd_apply, args(eks, yes=True))
    assert code == 1
    assert "! conflict on" in out
    assert "refusing to apply: the plan has conflicts" in err
    assert eks.mutating_calls() == []
    assert run(cmd_plan, args(eks))[0] == 2


def test_a_rule_needing_cluster_admin_is_an_error_without_traceback(eks, tmp_path):
    directory = write_policies(
        tmp_path / "policies",
        document("greedy", "greedy", [write(["clusterrolebindings"], effect="allow")]),
    )
    code, out, err = run(cmd_plan, args(eks, policies=str(directory)))
    assert code == 1
    assert "policy 'greedy' rule rules[0]" in err
    assert "writes to cluster-scoped resources clusterrolebindings" in err
    assert "Traceback" not in err + out


def test_broken_policies_and_aws_errors_are_messages(eks, tmp_path):
    code, _, err = run(cmd_plan, args(eks, policies=str(tmp_path / "missing")))
    assert code == 1 and "policy directory does not exist" in err
    code, _, err = run(cmd_plan, args(eks, cluster="demo", eks_name="not-a-cluster"))
    assert code == 1 and "ResourceNotFoundException" in err


def test_apply_failure_names_the_step(eks):
    eks.fail("create_access_entry", "AccessDeniedException", "not allowed")
    code, _out, err = run(cmd_apply, args(eks, yes=True))
    assert code == 1
    assert "step 1/9 failed: + create access entry" in err
    assert "AccessDeniedException: not allowed" in err


def test_no_matching_policy_warns_before_deleting_everything(eks, tmp_path):
    run(cmd_apply, args(eks, yes=True))
    directory = write_policies(
        tmp_path / "policies",
        document("other", "other", [read(["pods"], ["a"])], clusters=("staging",)),
    )
    code, out, _ = run(cmd_plan, args(eks, policies=str(directory)))
    assert code == 2
    assert "no policy's clusters match 'prod-eu'" in out
    assert out.count("- delete access entry") == 3
