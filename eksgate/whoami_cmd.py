"""``eksgate whoami``: who the gateway says you are, and what your policy allows."""

from __future__ import annotations

import json
import sys
from typing import Any

from eksgate.api_client import CliError, call_api
from eksgate.token_cmd import V1BETA1, Target, credential_for, source_from_args


def cmd_whoami(args: Any) -> int:
    from chalicelib.permissions.whoami import whoami_text

    try:
        target = Target(args.gateway, args.cluster, "gateway", args.ca_file)
        credential = credential_for(source_from_args(args), target, V1BETA1)
        answer = call_api(
            args.gateway,
            "GET",
            "/v1/whoami",
            token=credential["status"]["token"],
            ca_file=args.ca_file,
            refusal="the gateway refused whoami",
        )
    except CliError as exc:
        print(f"eksgate: {exc}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(answer, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(whoami_text(answer))
    return 0
