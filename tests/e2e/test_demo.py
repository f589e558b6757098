"""The README's first command runs this demo; it must complete, and leave nothing running."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def test_local_demo_completes_and_stops_everything(demo_run):
    result, workdir = demo_run
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo complete" in result.stdout
    assert "FAILED" not in result.stdout and "Traceback" not in result.stderr
    assert (workdir / ".eksgate-local" / "demo-app.log").stat().st_size > 0
