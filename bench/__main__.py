"""Run every benchmark row: ``.venv/bin/python -m bench [--quick] [--only NAME ...]``.

Groups: policy, masking, process, gateway. Exits 1 if any row misses its target, so the
figures can gate a change; nothing here is a test (tests never time anything).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import UTC, datetime

GROUPS = ("policy", "masking", "process", "gateway")


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{cpu}; {os.cpu_count()} cores; load average {load}; "
        f"Python {platform.python_version()}; {platform.system()} {platform.release()}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    parser.add_argument("--only", nargs="+", choices=GROUPS, default=list(GROUPS))
    args = parser.parse_args(argv)
    print(f"date     {datetime.now(UTC):%Y-%m-%d %H:%M UTC}")
    print(f"machine  {machine()}")
    print(f"command  python -m bench {' '.join(argv if argv is not None else sys.argv[1:])}\n")
    rows, extra = [], []
    started = time.monotonic()
    for group in args.only:
        if group == "policy":
            from bench import policy_rows

            found = policy_rows.run(args.quick)
        elif group == "masking":
            from bench import masking_rows

            found = masking_rows.run(args.quick)
        elif group == "process":
            from bench import process_rows

            found = process_rows.run(args.quick)
        else:
            from bench import gateway_rows

            found, model = gateway_rows.run(args.quick)
            extra.extend(model)
        for row in found:
            print("\n".join(row.lines()), flush=True)
        rows.extend(found)
    if extra:
        print("\n" + "\n".join(extra))
    judged = [r for r in rows if r.judged]
    failed = [r.name for r in judged if not r.passed]
    print(
        f"\n{len(judged) - len(failed)} of {len(judged)} rows meet their targets "
        f"({time.monotonic() - started:.0f} s)"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
