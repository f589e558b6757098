"""``eksgate approvals wait ID``: block until an approval is decided (for scripts and agents).

Exit codes: 0 approved, 1 denied / expired / used, 2 still pending at the timeout or an error.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.parse
from typing import Any

from eksgate.api_client import CliError, call_api
from eksgate.token_cmd import V1BETA1, Target, credential_for, source_from_args

POLL_SECONDS = 2.0


def approval_status(
    gateway: str, approval_id: str, session_token: str, ca_file: str | None
) -> dict[str, Any]:
    return call_api(
        gateway,
        "GET",
        f"/v1/approvals/{urllib.parse.quote(approval_id, safe='')}",
        token=session_token,
        ca_file=ca_file,
    )


def cmd_approvals_wait(args: Any) -> int:
    try:
        source = source_from_args(args)  # a file, a variable, or the GitHub Actions runner
        target = Target(args.gateway, args.cluster, "gateway", args.ca_file)
        deadline = time.monotonic() + args.timeout
        last = None
        while True:
            # The session token may expire during a long wait; the cache renews it.
            credential = credential_for(source, target, V1BETA1)
            approval = approval_status(
                args.gateway, args.approval_id, credential["status"]["token"], args.ca_file
            )
            status = approval.get("status")
            if status != last:
                print(f"approval {args.approval_id}: {status}", file=sys.stderr, flush=True)
                last = status
            if status != "pending":
                json.dump(approval, sys.stdout, indent=2)
                sys.stdout.write("\n")
                return 0 if status == "approved" else 1
            if time.monotonic() >= deadline:
                print(f"eksgate: still pending after {args.timeout:.0f}s", file=sys.stderr)
                return 2
            time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
    except CliError as exc:
        print(f"eksgate: {exc}", file=sys.stderr)
        return 2
