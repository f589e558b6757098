"""Chalice's packagers, as `chalice deploy`/`package` run them, compile the policy snapshot into
the zip, and refuse to package policies that do not load."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
from chalice.deploy.packager import AppOnlyDeploymentPackager, LambdaDeploymentPackager
from chalice.utils import UI, OSUtils

from chalicelib.config import DEFAULT_POLICY_DIR
from chalicelib.policy import load_policies
from chalicelib.policy.snapshot import SNAPSHOT_NAME, load_with_snapshot
from eksgate.policy_packaging import compile_when_packaging

SNAPSHOT_IN_ZIP = f"chalicelib/policies/{SNAPSHOT_NAME}"


@pytest.fixture
def packaging(monkeypatch):
    """compile_when_packaging() installed for this test only."""
    for packager in (LambdaDeploymentPackager, AppOnlyDeploymentPackager):
        monkeypatch.setattr(
            packager, "create_deployment_package", packager.create_deployment_package
        )
    compile_when_packaging()
    compile_when_packaging()  # a second call (app.py imported twice) wraps nothing again


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "project"
    (root / "chalicelib" / "policies").mkdir(parents=True)
    (root / "app.py").write_text("from chalice import Chalice\napp = Chalice('x')\n")
    (root / "chalicelib" / "__init__.py").write_text("")
    for path in DEFAULT_POLICY_DIR.glob("*.yaml"):
        shutil.copy(path, root / "chalicelib" / "policies" / path.name)
    return root


def package(project: Path) -> Path:
    packager = AppOnlyDeploymentPackager(OSUtils(), None, UI())  # type: ignore[arg-type]
    return Path(packager.create_deployment_package(str(project), "python3.11"))


def test_the_app_package_holds_a_snapshot_of_the_policies_it_ships(packaging, project, tmp_path):
    with zipfile.ZipFile(package(project)) as archive:
        assert SNAPSHOT_IN_ZIP in archive.namelist()
        archive.extractall(tmp_path / "task")
    policies = tmp_path / "task" / "chalicelib" / "policies"
    loaded = load_with_snapshot(policies)
    assert loaded.snapshot == "used", loaded.detail
    assert tuple(loaded.policies) == tuple(load_policies(policies))


def test_a_policy_edited_after_a_package_gets_a_new_snapshot_and_package(
    packaging, project, tmp_path
):
    first = package(project)
    path = project / "chalicelib" / "policies" / "ci-agent.yaml"
    path.write_text(path.read_text().replace("effect: deny", "effect: allow", 1))
    second = package(project)
    assert second != first  # the zip's name hashes its files, the new snapshot among them
    with zipfile.ZipFile(second) as archive:
        archive.extractall(tmp_path / "task")
    shipped = tmp_path / "task" / "chalicelib" / "policies"
    assert (shipped / "ci-agent.yaml").read_bytes() == path.read_bytes()
    loaded = load_with_snapshot(shipped)
    assert loaded.snapshot == "used"
    assert tuple(loaded.policies) == tuple(load_policies(shipped))


def test_policies_that_do_not_load_are_not_packaged(packaging, project, capsys):
    path = project / "chalicelib" / "policies" / "engineers.yaml"
    path.write_text(path.read_text().replace("verbs: [", "verbs: [lst, ", 1))
    with pytest.raises(SystemExit) as exit_:
        package(project)
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert f"error: {path}:" in err and "unknown verb 'lst'" in err
    assert "not packaging them" in err
    assert not list((project / ".chalice").glob("deployments/*.zip"))
