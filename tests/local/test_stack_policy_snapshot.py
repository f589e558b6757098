"""The local stack compiles the policy snapshot its app loads, as packaging does for Lambda."""

from __future__ import annotations

import shutil

from eksgate_local.stack import _compile_policy_snapshot

from chalicelib.config import DEFAULT_POLICY_DIR
from chalicelib.policy.snapshot import SNAPSHOT_NAME, load_with_snapshot, snapshot_path


def test_the_stack_compiles_the_snapshot_of_the_policies_it_serves(tmp_path):
    directory = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, directory, ignore=shutil.ignore_patterns(SNAPSHOT_NAME))
    _compile_policy_snapshot(directory)
    assert load_with_snapshot(directory).snapshot == "used"


def test_policies_that_do_not_load_are_left_to_the_app_to_refuse(tmp_path):
    directory = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, directory, ignore=shutil.ignore_patterns(SNAPSHOT_NAME))
    (directory / "broken.yaml").write_text("name: [\n")
    _compile_policy_snapshot(directory)  # no exception: the app fails closed and logs why
    assert not snapshot_path(directory).exists()


def test_a_directory_that_cannot_be_written_costs_only_the_snapshot(tmp_path):
    directory = tmp_path / "policies"
    shutil.copytree(DEFAULT_POLICY_DIR, directory, ignore=shutil.ignore_patterns(SNAPSHOT_NAME))
    snapshot_path(directory).mkdir()  # the snapshot's place is taken: the rename fails
    _compile_policy_snapshot(directory)
    assert load_with_snapshot(directory).snapshot == "unusable"
    assert [p.name for p in directory.iterdir() if p.name.endswith(".tmp")] == []
