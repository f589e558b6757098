"""What an exec approval binds (pure): the exact pod, container, argv and stdin.

``mode: once`` approves one exact exec: the subject below is stored with the approval and
recomputed when the approved exec runs; any difference (another pod, a re-ordered argument,
different stdin) is a different request and needs its own approval.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from chalicelib.exec.request import ExecInput
from chalicelib.policy.commands import render_argv


def stdin_sha256(stdin: bytes | None) -> str:
    """The hash approvers bind to ("" when there is no stdin at all, which differs from b"")."""
    return "" if stdin is None else hashlib.sha256(stdin).hexdigest()


def exec_approval_subject(cluster: str, request: ExecInput) -> dict[str, Any]:
    """The values an exec approval binds, plus their fingerprint."""
    subject = {
        "kind": "exec",
        "cluster": cluster,
        "namespace": request.namespace,
        "pod": request.pod,
        "container": request.container or "",
        "argv": list(request.argv),
        "stdin_sha256": stdin_sha256(request.stdin),
        "stdin_bytes": 0 if request.stdin is None else len(request.stdin),
    }
    canonical = json.dumps(subject, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    subject["fingerprint"] = hashlib.sha256(canonical.encode()).hexdigest()
    return subject


def exec_command_line(request: ExecInput) -> str:
    """``kubectl exec`` as a person would type it, shell-quoted (for Slack and replay)."""
    words = ["kubectl", "exec", "-n", request.namespace, request.pod]
    if request.container:
        words += ["-c", request.container]
    if request.stdin is not None:
        words.append("-i")
    return render_argv(words) + " -- " + render_argv(request.argv)
