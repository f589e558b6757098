"""Which kubectl binaries the tests run, chosen explicitly (never the PATH `kubectl`).

On these machines `kubectl` on PATH is the gcloud dispatcher, which picks a binary by the
server's version; the tests instead run the newest kubectl installed and the oldest one eksgate
supports, each by its path, so a test names the client behaviour it checks.
"""

from __future__ import annotations

import glob
import json
import re
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

# The oldest EKS version still supported (1.32, extended support until March 2027) and
# kubectl's +/-1 minor version skew give the oldest kubectl eksgate supports.
OLDEST_SUPPORTED_MINOR = 31
VERSIONED = "kubectl.1.*"


def _minor(binary: Path) -> int | None:
    try:
        out = subprocess.run(
            [str(binary), "version", "--client", "-o", "json"],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout
        version = json.loads(out)["clientVersion"]
        return int(re.sub(r"\D.*", "", version["minor"]))
    except (OSError, ValueError, KeyError, subprocess.TimeoutExpired):
        return None


@lru_cache(maxsize=1)
def installed() -> dict[int, Path]:
    """minor -> binary, for every real kubectl found (versioned ones beside the PATH entry)."""
    found: dict[int, Path] = {}
    on_path = shutil.which("kubectl")
    if on_path is None:
        return found
    real = Path(on_path).resolve()
    for candidate in [real, *sorted(Path(p) for p in glob.glob(str(real.parent / VERSIONED)))]:
        minor = _minor(candidate)
        if minor is not None and candidate.name != "kubectl":
            found[minor] = candidate
        elif minor is not None and not any(real.parent.glob(VERSIONED)):
            found[minor] = candidate  # a plain kubectl, not a dispatcher
    return found


def chosen() -> dict[str, Path]:
    """{"newest": ..., "oldest-supported": ...} of what is installed (possibly one binary)."""
    versions = installed()
    if not versions:
        return {}
    supported = [m for m in versions if m >= OLDEST_SUPPORTED_MINOR]
    picks = {"newest": versions[max(versions)]}
    if supported:
        picks["oldest-supported"] = versions[min(supported)]
    return picks
