"""``eksgate mcp``: a Model Context Protocol server (stdio) for AI agents.

Configured like the exec plugin (cluster, gateway, OIDC token source) and using the same
credential flow and cache, it offers Kubernetes tools (``eksgate.mcp_tools``) whose every
call goes through the gateway. The tool descriptions carry what the agent's policy allows,
from ``GET /v1/whoami``, so an agent knows before it asks.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from eksgate.api_client import CliError
from eksgate.gateway_client import GatewayClient
from eksgate.mcp_tools import KubeTools
from eksgate.token_cmd import V1BETA1, OidcSource, Target, credential_for, source_from_args

INSTRUCTIONS = (
    "Kubernetes through the eksgate gateway. Every call is decided by your eksgate policy: "
    "allowed calls run, some wait for a human's approval in Slack (the result has outcome "
    "'approval_required' with an approval_id: call approval_wait with it), some are denied "
    "(outcome 'denied' with the rule and reason: do not retry those). Secret values come back "
    "masked. Everything you do is recorded."
)

TOOL_TEXTS: dict[str, tuple[str, bool]] = {
    # name: (description, changes the cluster)
    "whoami": ("Who the gateway says you are, your session, and your policy's rules.", False),
    "can_i": (
        "Would the policy let you do VERB on RESOURCE (plural, TYPE.GROUP, or a /path) in "
        "NAMESPACE? Answers allowed, denied (with the rule's reason) or approval required.",
        False,
    ),
    "list_resources": (
        "List objects of a resource type (pods, deployments, ...), as short rows "
        "(full=true for whole objects). Secret values are masked.",
        False,
    ),
    "get_resource": ("One object as JSON (or output='yaml'). Secret values are masked.", False),
    "describe": ("A kubectl-describe-like summary of one object with its recent events.", False),
    "events": ("Events in a namespace, optionally for one object (resource and name).", False),
    "logs": (
        "A pod's log, bounded: tail_lines (at most 2000) and limit_bytes (at most 1 MiB).",
        False,
    ),
    "apply": (
        "Create an object from a YAML/JSON manifest, or merge the manifest into the existing "
        "object (JSON merge patch: a field you leave out is kept). A server-side dry run runs "
        "first and its diff is returned; dry_run_only=true stops there.",
        True,
    ),
    "patch": (
        "Patch an object: patch is JSON; patch_type strategic (default), merge or json.",
        True,
    ),
    "scale": ("Set the replicas of a deployment (or statefulset: resource=...).", True),
    "rollout_restart": (
        "Restart a deployment's pods, as kubectl rollout restart does. If it needs approval, "
        "approval_wait sends this same restart once approved.",
        True,
    ),
    "delete": ("Delete one object.", True),
    "approval_status": ("Where an approval stands (pending, approved, denied, ...).", False),
    "approval_wait": (
        "Wait (up to timeout_seconds, at most 900) until a human decides an approval; once "
        "approved, sends the request that asked for it, exactly once, and returns its result.",
        False,
    ),
}


def policy_digest(tools: KubeTools) -> str:
    """What the policy allows, for tool descriptions; says so when it cannot be known."""
    from chalicelib.permissions.whoami import whoami_text

    try:
        answer = tools.whoami()
    except CliError as exc:
        return f"Your policy could not be read ({exc}); ask can_i before acting."
    if answer.get("outcome") != "ok":
        reason = answer.get("message") or answer.get("reason") or answer.get("outcome")
        return f"Your policy could not be read from the gateway ({reason}); ask can_i first."
    return "Your eksgate policy (GET /v1/whoami):\n" + whoami_text(answer)


def _guarded(function: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """A tool whose failures are results the agent reads, never a stack trace."""

    @functools.wraps(function)
    def tool(*args: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            return function(*args, **kwargs)
        except CliError as exc:
            return {"outcome": "error", "message": str(exc)}

    return tool


def build_server(tools: KubeTools, digest: str) -> Any:
    from mcp.server import MCPServer
    from mcp.types import ToolAnnotations

    from eksgate.cli import _version

    server = MCPServer(
        name="eksgate",
        instructions=INSTRUCTIONS + "\n\n" + digest,
        version=_version(),
        log_level="WARNING",
    )
    for name, (text, changes) in TOOL_TEXTS.items():
        server.add_tool(
            _guarded(getattr(tools, name)),
            name=name,
            description=f"{text}\n\n{digest}",
            annotations=ToolAnnotations(
                read_only_hint=not changes,
                destructive_hint=changes,
                open_world_hint=False,
            ),
        )
    return server


def session_tokens(source: OidcSource, target: Target) -> Callable[[bool], str]:
    """Gateway session tokens from the exec plugin's cache; ``renew`` after a 401."""

    def token(renew: bool) -> str:
        credential = credential_for(source, target, V1BETA1, force_refresh=renew)
        return str(credential["status"]["token"])

    return token


def cmd_mcp(args: Any) -> int:
    try:
        import mcp  # noqa: F401
    except ImportError:
        print(
            "eksgate: the MCP server needs the mcp package: pip install 'eksgate[mcp]'",
            file=sys.stderr,
        )
        return 2
    target = Target(args.gateway, args.cluster, "gateway", args.ca_file)
    client = GatewayClient(
        args.gateway, args.cluster, session_tokens(source_from_args(args), target), args.ca_file
    )
    tools = KubeTools(client)
    build_server(tools, policy_digest(tools)).run("stdio")
    return 0
