"""Masking rows: 5 MB answers masked through the public functions of chalicelib.masking,
against JSON's own cost for the same bytes, and the peak memory masking takes.

Masked path = ``mask_json`` (what the gateway does to an answer: bytes in, masked bytes out);
the floor = ``json.loads`` + ``json.dumps`` of the same bytes. Watch: ``mask_watch_stream``
against each line through JSON. Logs: ``mask_text`` against the text through JSON once (dumps
then loads).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import workloads
from bench.harness import Row, interleave, ms
from chalicelib.masking import kind_for_resource, mask_json, mask_text, mask_watch_stream

SIZE = 5 * workloads.MB


def _document_pair(body: bytes, resource: str):
    # The gateway passes the kind the request resolved to (``secrets`` -> Secret).
    resource_kind = kind_for_resource("", resource)

    def masked() -> bytes:
        return mask_json(body, resource_kind=resource_kind)

    def floor() -> bytes:
        return json.dumps(json.loads(body), separators=(",", ":")).encode()

    return masked, floor


def _watch_pair(stream: bytes):
    def masked() -> bytes:
        return mask_watch_stream(stream)

    def floor() -> bytes:
        return b"".join(
            json.dumps(json.loads(line), separators=(",", ":")).encode() + b"\n"
            for line in stream.split(b"\n")
            if line
        )

    return masked, floor


def _logs_pair(text: str):
    def masked() -> str:
        return mask_text(text)

    def floor() -> str:
        return json.loads(json.dumps(text))

    return masked, floor


def _row(name: str, pair_fns, target: float, rounds: int, size: int) -> Row:
    masked, floor = pair_fns
    # CPU time: masking is pure single-threaded computation, and these cores are shared.
    pair = interleave(masked, floor, rounds, cpu=True)
    ratio = pair.ratio()
    return Row(
        name=name,
        measured=f"{ratio:.2f}x ({ms(sorted(pair.a)[len(pair.a) // 2])})",
        floor=f"{ms(sorted(pair.b)[len(pair.b) // 2])} CPU for {size / workloads.MB:.1f} MB",
        spread=pair.ratio_spread(),
        target=f"<= {target}x",
        passed=ratio <= target,
    )


def _stress_row(name: str, pair_fns, rounds: int, size: int, why: str) -> Row:
    """Measured and printed like a row, judged by nothing: a case to watch, not a target."""
    row = _row(name, pair_fns, float("inf"), rounds, size)
    row.target = f"none: {why}"
    row.judged = False
    return row


_RSS_CHILD = """
import gc, json, sys
from chalicelib.masking import mask_json

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024

body = open(sys.argv[1], "rb").read()
gc.collect()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # resets the peak (VmHWM) to the current RSS
before = status("VmRSS")
if sys.argv[2] == "mask":  # the gateway's path: bytes in, masked bytes out
    out = mask_json(body)  # pods: no kind masking treats specially
else:
    out = json.dumps(json.loads(body), separators=(",", ":")).encode()
print(before, status("VmHWM"), len(body))
"""


def peak_rss(quick: bool) -> Row:
    """Peak RSS growth of a fresh process while masking a 5 MB PodList (answer read first)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "answer.json"
        path.write_bytes(workloads.encoded(workloads.pod_list(SIZE)))
        runs, floors = [], []
        for _ in range(1 if quick else 3):
            for mode, into in (("mask", runs), ("json", floors)):
                out = subprocess.run(
                    [sys.executable, "-c", _RSS_CHILD, str(path), mode],
                    cwd=Path(__file__).resolve().parent.parent,
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.split()
                before, after, size = map(int, out)
                into.append((after - before) / size)
    factor = sorted(runs)[len(runs) // 2]
    floor = sorted(floors)[len(floors) // 2]
    return Row(
        name="peak RSS while masking a 5 MB PodList (fresh process)",
        measured=f"{factor:.2f}x the answer's size above the process before masking",
        floor=f"the answer: {size / workloads.MB:.1f} MB (VmHWM growth, answer read in first); "
        f"json.loads + json.dumps alone: {floor:.2f}x",
        spread=f"{min(runs):.2f}..{max(runs):.2f}x (n={len(runs)})",
        target="<= 4x",
        passed=factor <= 4,
    )


def run(quick: bool = False) -> list[Row]:
    rounds = 3 if quick else 9
    secrets = workloads.encoded(workloads.secret_list(SIZE))
    table = workloads.encoded(workloads.pod_table(SIZE))
    pods = workloads.encoded(workloads.pod_list(SIZE))
    stream = workloads.watch_stream(SIZE)
    logs = workloads.logs(SIZE)
    dense_logs = workloads.dense_logs(SIZE)
    marked_logs = workloads.marked_logs(SIZE)
    return [
        _row(
            "masking a 5 MB SecretList",
            _document_pair(secrets, "secrets"),
            1.3,
            rounds,
            len(secrets),
        ),
        _row(
            "masking a 5 MB Table (includeObject)",
            _document_pair(table, "pods"),
            1.3,
            rounds,
            len(table),
        ),
        _row("masking a 5 MB PodList", _document_pair(pods, "pods"), 1.3, rounds, len(pods)),
        _row("masking a 5 MB watch stream", _watch_pair(stream), 1.3, rounds, len(stream)),
        _row(
            "masking 5 MB of logs (1 line in 10 names a trigger word, 1 in 100 a credential)",
            _logs_pair(logs),
            2.0,
            rounds,
            len(logs.encode()),
        ),
        _stress_row(
            "masking 5 MB of typical logs with `a -> b` on 1 line in 50 (no target)",
            _logs_pair(marked_logs),
            rounds,
            len(marked_logs.encode()),
            "a variant of the typical row, to watch the mark check's cost",
        ),
        _stress_row(
            "masking 5 MB of dense logs (2 lines in 5 hold a credential; stress, no target)",
            _logs_pair(dense_logs),
            rounds,
            len(dense_logs.encode()),
            "each credential costs a regular-expression match in Python",
        ),
        peak_rss(quick),
    ]


if __name__ == "__main__":
    for row in run("--quick" in sys.argv):
        print("\n".join(row.lines()))
