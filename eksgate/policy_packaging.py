"""``chalice deploy`` and ``chalice package`` compile the policy snapshot into the package.

A cold start then loads the compiled policies instead of parsing and validating every YAML
file (chalicelib/policy/snapshot.py). Chalice has no packaging hook, so, as with the API
definition (eksgate/api_definition.py), app.py calls :func:`compile_when_packaging` only when
the Chalice CLI has loaded it: every packager whose zip holds the app first writes
``chalicelib/policies/.eksgate-snapshot.json`` into the project, so the zip (and the hash that
names it) includes a snapshot of exactly the files it ships.

Policies that do not load stop the packaging with the same file:line: field errors as
``eksgate policy lint``: a function deployed with them would refuse every request.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

from chalicelib.policy import PolicyError
from chalicelib.policy.snapshot import compile_snapshot

POLICY_DIR = Path("chalicelib") / "policies"


def compile_for_package(project_dir: str | Path) -> None:
    """Write the snapshot of ``project_dir``'s policies; exit 1 naming each problem if any."""
    directory = Path(project_dir) / POLICY_DIR
    if not directory.is_dir():
        return  # no policies in the package: the function fails closed, as without a snapshot
    try:
        path, count = compile_snapshot(directory)
    except PolicyError as exc:
        for problem in exc.problems:
            print(f"error: {problem}", file=sys.stderr)
        print("eksgate: the policies do not load; not packaging them", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"eksgate: compiled {count} policies into {path.relative_to(project_dir)}")


def compile_when_packaging() -> None:
    """Make every Chalice packager that zips the app compile the policy snapshot first."""
    from chalice.deploy.packager import AppOnlyDeploymentPackager, LambdaDeploymentPackager

    for packager in (LambdaDeploymentPackager, AppOnlyDeploymentPackager):
        create = packager.create_deployment_package
        if getattr(create, "compiles_policies", False):
            continue
        packager.create_deployment_package = _compiling(create)  # type: ignore[method-assign]


def _compiling(create: Any) -> Any:
    @functools.wraps(create)  # keeps Chalice's own as __wrapped__
    def create_with_snapshot(self: Any, project_dir: str, python_version: str) -> str:
        compile_for_package(project_dir)
        return create(self, project_dir, python_version)

    create_with_snapshot.compiles_policies = True  # type: ignore[attr-defined]
    return create_with_snapshot
