"""How replay shows exec steps: ``kubectl exec -n NS POD -- argv`` and the recorded output."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

from chalicelib.audit.records import SessionRecord

_INDENT = "      "


def exec_step(record: SessionRecord) -> Mapping[str, Any] | None:
    step = (record.detail or {}).get("exec")
    return step if isinstance(step, dict) and record.request else None


def exec_command_text(record: SessionRecord, step: Mapping[str, Any]) -> str:
    request = record.request or {}
    words = [
        "kubectl",
        "exec",
        "-n",
        str(request.get("namespace", "")),
        str(request.get("name", "")),
    ]
    if step.get("container"):
        words += ["-c", str(step["container"])]
    if step.get("stdin_bytes") is not None:
        words.append("-i")
    argv = [str(a) for a in step.get("argv") or []]
    return " ".join(shlex.quote(w) for w in words) + " -- " + " ".join(shlex.quote(a) for a in argv)


def exec_outcome_text(record: SessionRecord, step: Mapping[str, Any]) -> str:
    latency = f"  {round(record.latency_ms)}ms" if record.latency_ms is not None else ""
    if "error" in (record.detail or {}):
        return f"  -> not run: {record.detail['error'].get('message', '')}{latency}"
    if step.get("outcome") == "cut":
        return (
            f"  -> cut at the deadline (process {step.get('remote_process', 'unknown')}){latency}"
        )
    if step.get("exit_code") is None:
        return f"  -> no exit status: {step.get('error', '')}{latency}"
    return f"  -> exit {step['exit_code']}{latency}"


def exec_output_lines(record: SessionRecord) -> list[str]:
    """The masked, bounded output of an exec response record."""
    step = exec_step(record)
    if record.kind != "response" or step is None:
        return []
    lines = []
    for stream in ("stdout", "stderr"):
        output = step.get(stream) or {}
        if not output.get("size"):
            continue
        cut = f", {output['cut_bytes']} bytes cut" if output.get("cut_bytes") else ""
        if "text" in output:
            lines.append(f"{_INDENT}{stream} ({output['size']} bytes{cut}):")
            lines += [f"{_INDENT}  {line}" for line in str(output["text"]).splitlines()]
        else:
            lines.append(f"{_INDENT}{stream}: {output['size']} bytes of binary output{cut}")
    return lines
