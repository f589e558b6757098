"""The README's first command runs this demo; it must complete, and leave nothing running."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e


def test_local_demo_completes_and_stops_everything(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "eksgate.cli", "local", "demo"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo complete" in result.stdout
    assert "FAILED" not in result.stdout and "Traceback" not in result.stderr
    assert (tmp_path / ".eksgate-local" / "demo-app.log").stat().st_size > 0
