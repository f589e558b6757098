"""The development tools stay out of the product: the `eksgate` wheel holds no emulator or Slack
fake, operator commands never import them, and `eksgate local` says what to do without them."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from eksgate.cli import main

ROOT = Path(__file__).resolve().parents[2]
DEV_MARKERS = ("eksgate_local", "kube_emulator", "slack_fake", "oidc_issuer", "gateway_server")


def _build_wheel(tmp_path: Path) -> Path:
    """Build the eksgate wheel from a copy of the checkout (so no build/ lands in the tree),
    with devtools/ copied too: the package selection itself must leave it out."""
    source = tmp_path / "src"
    source.mkdir()
    shutil.copy(ROOT / "pyproject.toml", source)
    for folder in ("chalicelib", "eksgate", "devtools"):
        shutil.copytree(
            ROOT / folder,
            source / folder,
            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
        )
    dist = tmp_path / "dist"
    script = (
        "import sys; from setuptools import build_meta; print(build_meta.build_wheel(sys.argv[1]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(dist)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return dist / done.stdout.strip().splitlines()[-1]


def test_the_eksgate_wheel_holds_no_development_tools(tmp_path):
    names = zipfile.ZipFile(_build_wheel(tmp_path)).namelist()
    leaked = [name for name in names if any(marker in name for marker in DEV_MARKERS)]
    assert leaked == []
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"chalicelib", "eksgate"}
    # What the CLI itself needs does ship: the discovery documents and the policies.
    assert "eksgate/fixtures/kubernetes/discovery/api__v1.json" in names
    assert "eksgate/cli.py" in names and "chalicelib/policies/ci-agent.yaml" in names


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(module, at module level) for every import in a file."""
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append((node.module, id(node) in top))
    return found


def test_only_the_local_command_imports_the_development_package():
    importers = {}
    for path in sorted((ROOT / "eksgate").rglob("*.py")):
        for module, top_level in _imports(path):
            if module.split(".")[0] == "eksgate_local":
                importers[str(path.relative_to(ROOT))] = top_level
    # cli.py imports it inside the `local` command only, never when the module loads.
    assert importers == {"eksgate/cli.py": False}


def test_operator_commands_load_without_the_development_package():
    code = (
        "import sys; sys.modules['eksgate_local'] = None\n"
        "import eksgate.cli, eksgate.iam_policy, eksgate.infra_render, eksgate.policy_cmd\n"
        "import eksgate.token_cmd, eksgate.sessions_cmd, eksgate.access_entries.cmd\n"
        "sys.exit(eksgate.cli.main(['policy', 'lint']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert "policies OK" in done.stdout


def test_local_without_the_development_package_says_what_to_do(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "eksgate_local", None)  # as on an agent's machine
    assert main(["local", "up"]) == 2
    err = capsys.readouterr().err
    assert "not installed here" in err
    assert "scripts/bootstrap" in err and "eksgate local up" in err
    assert "Traceback" not in err
