"""The ``eksgate`` command: credentials for agents, policy tools, the local stack."""

from __future__ import annotations

import os
import sys

# Imports stay inside functions: `eksgate token` with a warm cache (run by kubectl for every
# command) must cost little more than starting Python (eksgate/token_fast.py). Even `typing`
# costs 3 ms, so the type checkers' constant is spelled out.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from pathlib import Path
    from typing import NoReturn


def _policy_dir(value: str | None) -> Path:
    from pathlib import Path

    from chalicelib.config import DEFAULT_POLICY_DIR

    return Path(value) if value else DEFAULT_POLICY_DIR


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("eksgate")
    except PackageNotFoundError:
        return "unknown (not installed as a package)"


def _gateway_client_arguments(command: argparse.ArgumentParser) -> None:
    """How a command that talks to the gateway gets its session (like ``eksgate token``)."""
    command.add_argument("--cluster", required=True)
    command.add_argument("--gateway", required=True, help="the eksgate API URL")
    source = command.add_mutually_exclusive_group()
    source.add_argument("--oidc-token-file", help="file holding the OIDC ID token (re-read)")
    source.add_argument(
        "--oidc-token-env",
        help="environment variable holding the OIDC token (default EKSGATE_OIDC_TOKEN; "
        "GitLab CI: the variable your id_tokens entry names)",
    )
    source.add_argument(
        "--github-actions",
        action="store_true",
        help="ask the GitHub Actions runner for a new OIDC token whenever one is needed",
    )
    command.add_argument(
        "--oidc-audience",
        help="audience of the GitHub Actions OIDC token (default eksgate)",
    )
    command.add_argument("--ca-file", help="CA bundle to verify the gateway with (default: system)")


def build_parser() -> argparse.ArgumentParser:
    import argparse
    from pathlib import Path

    parser = argparse.ArgumentParser(prog="eksgate", description=__doc__)

    class Version(argparse.Action):
        """Like argparse's version action, but reads the installed version only when asked."""

        def __call__(
            self,
            parser: argparse.ArgumentParser,
            namespace: argparse.Namespace,
            values: object,
            option_string: str | None = None,
        ) -> NoReturn:
            print(f"eksgate {_version()}")
            parser.exit()

    parser.add_argument("--version", nargs=0, action=Version, help="print the version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    token = commands.add_parser("token", help="print an ExecCredential (kubectl exec plugin)")
    _gateway_client_arguments(token)
    token.add_argument("--mode", choices=["gateway", "direct"], default="gateway")
    token.add_argument("--no-cache", action="store_true", help="always ask the broker")
    token.add_argument(
        "--force-refresh",
        action="store_true",
        help="ask the broker even if a cached credential is still valid, and cache the new one",
    )

    cache = commands.add_parser("cache", help="the on-disk credential cache")
    cache_commands = cache.add_subparsers(dest="cache_command", required=True)
    cache_commands.add_parser("clear", help="remove every cached credential")

    whoami = commands.add_parser(
        "whoami", help="who the gateway says you are, and what your policy allows"
    )
    _gateway_client_arguments(whoami)
    whoami.add_argument("--json", action="store_true", help="print the gateway's JSON")

    mcp = commands.add_parser(
        "mcp", help="an MCP server (stdio) whose tools reach the cluster through the gateway"
    )
    _gateway_client_arguments(mcp)

    from eksgate.exec_cmd import add_exec_parser

    add_exec_parser(commands)

    kubeconfig = commands.add_parser("kubeconfig", help="print or merge a kubeconfig entry")
    kubeconfig.add_argument("--cluster", required=True)
    kubeconfig.add_argument("--gateway", required=True)
    kubeconfig.add_argument("--mode", choices=["gateway", "direct"], default="gateway")
    kubeconfig.add_argument("--server", default="", help="direct mode: the EKS endpoint")
    kubeconfig.add_argument("--certificate-authority-data", default="")
    kubeconfig.add_argument("--oidc-token-file", default="")
    kubeconfig.add_argument("--oidc-token-env", default="")
    kubeconfig.add_argument(
        "--github-actions", action="store_true", help="the plugin asks the Actions runner"
    )
    kubeconfig.add_argument("--oidc-audience", default="")
    kubeconfig.add_argument("--context", default="")
    kubeconfig.add_argument("--ca-file", default="", help="CA bundle for a private gateway")
    kubeconfig.add_argument("--merge", metavar="KUBECONFIG", help="merge into this file")

    policy = commands.add_parser("policy", help="check policies")
    policy_commands = policy.add_subparsers(dest="policy_command", required=True)
    lint = policy_commands.add_parser("lint", help="validate policies and warn about mistakes")
    lint.add_argument("dir", nargs="?")
    test = policy_commands.add_parser("test", help="run the cases in DIR/tests/*.yaml")
    test.add_argument("dir", nargs="?")
    compile_ = policy_commands.add_parser(
        "compile",
        help="validate policies and write DIR/.eksgate-snapshot.json, which a cold start loads "
        "instead of the YAML while it matches the files (chalice deploy/package do this)",
    )
    compile_.add_argument("dir", nargs="?")
    policy_suggest = policy_commands.add_parser(
        "suggest", help="the smallest policy the audit trail shows is needed (auditors)"
    )
    who = policy_suggest.add_mutually_exclusive_group(required=True)
    who.add_argument("--identity", help="the caller's subject, as `sessions list` takes it")
    who.add_argument("--policy", help="every caller of this policy")
    policy_suggest.add_argument("--since", default="30d", help="window (default 30d)")
    policy_suggest.add_argument("--cluster", action="append", help="only this cluster")
    policy_suggest.add_argument("--policies", help="policy directory (default: policies/)")
    policy_simulate = policy_commands.add_parser(
        "simulate", help="replay the audit trail against DIR (exit 1: allowed becomes denied)"
    )
    policy_simulate.add_argument("dir")
    policy_simulate.add_argument("--since", default="7d", help="window (default 7d)")
    policy_simulate.add_argument("--cluster", action="append", help="only this cluster")
    policy_simulate.add_argument("--identity", action="append", help="only this subject")

    can_i = commands.add_parser("can-i", help="what would the policies decide?")
    can_i.add_argument(
        "--subject",
        required=True,
        type=Path,
        help="YAML/JSON file of the caller's token claims (iss, sub, ...)",
    )
    can_i.add_argument("verb")
    can_i.add_argument("resource", help="TYPE[.GROUP][/NAME] as kubectl takes it, or a /path")
    can_i.add_argument("-n", "--namespace", default="")
    can_i.add_argument("--cluster", default="demo")
    can_i.add_argument("--subresource", default="")
    can_i.add_argument("--policies", help="policy directory (default: the app's policies/)")

    def api_client_arguments(command: argparse.ArgumentParser) -> None:
        command.add_argument("--gateway", required=True, help="the eksgate API URL")
        token_source = command.add_mutually_exclusive_group()
        token_source.add_argument("--oidc-token-file")
        token_source.add_argument("--oidc-token-env")
        command.add_argument("--ca-file", help="CA bundle for a private gateway")

    api_client_arguments(policy_suggest)
    api_client_arguments(policy_simulate)

    approvals = commands.add_parser("approvals", help="follow approval requests")
    approvals_commands = approvals.add_subparsers(dest="approvals_command", required=True)
    wait = approvals_commands.add_parser(
        "wait",
        help="wait until an approval is decided (exit 0 approved, 1 refused, 2 still pending)",
    )
    wait.add_argument("approval_id")
    wait.add_argument("--timeout", type=float, default=900.0, help="seconds (default 900)")
    _gateway_client_arguments(wait)

    sessions = commands.add_parser("sessions", help="read the audit trail (auditors)")
    sessions_commands = sessions.add_subparsers(dest="sessions_command", required=True)
    listing = sessions_commands.add_parser("list", help="sessions by identity or cluster")
    api_client_arguments(listing)
    for option in ("--identity", "--cluster", "--since", "--until"):
        listing.add_argument(option)
    listing.add_argument("--decision", choices=["allow", "approve", "deny"])
    listing.add_argument("--json", action="store_true")
    for name, text in (
        ("show", "every record of a session"),
        ("replay", "a session as a timeline of kubectl-equivalent commands"),
        ("verify", "recompute the session's hash chain here, trusting no one"),
    ):
        command = sessions_commands.add_parser(name, help=text)
        api_client_arguments(command)
        command.add_argument("session_id")
        command.add_argument("--json", action="store_true")
        if name == "verify":
            command.add_argument(
                "--expect-count", type=int, help="the number of records the session must have"
            )
            command.add_argument("--expect-last-hash", help="the last record's hash, kept apart")
        else:
            command.add_argument("--bodies", action="store_true", help="show masked bodies")

    export = sessions_commands.add_parser(
        "export", help="sessions as JSON lines: eksgate records or Kubernetes audit events"
    )
    api_client_arguments(export)
    export.add_argument("session_ids", nargs="*", metavar="SESSION_ID")
    for option in ("--identity", "--cluster", "--since", "--until"):
        export.add_argument(option)
    export.add_argument("--format", choices=["records", "k8s-audit"], default="records")
    export.add_argument("--policy", help="a Kubernetes audit Policy file (k8s-audit levels)")

    access = commands.add_parser("access-entries", help="EKS access entries from policies/")
    access_commands = access.add_subparsers(dest="access_command", required=True)
    for name, text in (
        ("plan", "show what would change (exit 0: nothing, 2: changes)"),
        ("apply", "create, update and delete the managed access entries"),
    ):
        command = access_commands.add_parser(name, help=text)
        command.add_argument("--cluster", required=True, help="the cluster name policies use")
        command.add_argument("--stage", help="read the EKS name and region from this stage")
        command.add_argument("--eks-name", dest="eks_name", help="the EKS cluster's own name")
        command.add_argument("--region")
        command.add_argument("--policies", help="policy directory (default: policies/)")
        if name == "apply":
            command.add_argument("--yes", action="store_true", help="do not ask to confirm")

    infra = commands.add_parser("infra", help="CloudFormation for chalice package")
    infra_commands = infra.add_subparsers(dest="infra_command", required=True)
    render = infra_commands.add_parser(
        "render", help="infra/template.yaml plus a role and access entries per policy role"
    )
    render.add_argument("--stage", required=True)
    render.add_argument("--output", "-o", default="-")
    render.add_argument("--policies", help="policy directory (default: policies/)")
    render.add_argument(
        "--function-role", dest="function_role", help="the function's role: a logical id or an ARN"
    )
    render.add_argument(
        "--api",
        choices=("http", "rest"),
        default="http",
        help="the front door: an HTTP API in place of Chalice's REST API (default), or REST",
    )

    iam = infra_commands.add_parser(
        "iam-policy",
        help="write .chalice/policy-STAGE.json, the function's least-privilege IAM policy",
    )
    iam.add_argument("--stage", required=True)
    iam.add_argument("--check", action="store_true", help="only check it is up to date")

    local = commands.add_parser("local", help="the whole system on loopback, no AWS account")
    local_commands = local.add_subparsers(dest="local_command", required=True)
    up = local_commands.add_parser("up", help="start everything until Ctrl-C")
    up.add_argument("--kubeconfig", default=".eksgate-local/kubeconfig")
    up.add_argument("--state-file", help="write the stack's addresses here as JSON when ready")
    up.add_argument("--policies", help="policy directory (default: the app's policies/)")
    up.add_argument("--gateway-port", type=int, default=0, help="default: a free port")
    up.add_argument("--quiet", action="store_true", help="do not print Slack messages")
    up.add_argument(
        "--approval-wait",
        type=float,
        default=5.0,
        help="seconds a request waits for a decision before answering 403",
    )
    up.add_argument(
        "--watch-timeout",
        type=int,
        default=20,
        help="seconds a watch through the gateway lasts before clients reconnect",
    )
    local_commands.add_parser("demo", help="start the stack, run the scripted scenario, stop")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; a reader that goes away (``eksgate token | head``) is no error."""
    try:
        return _run(sys.argv[1:] if argv is None else argv)
    except BrokenPipeError:
        # Nothing more can reach the reader; point stdout at /dev/null so Python's own flush
        # at exit does not print a traceback either.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # what a shell reports for a process ended by SIGPIPE
    except KeyboardInterrupt:
        return 130


def _run(argv: list[str]) -> int:
    if argv[:1] == ["token"]:
        from eksgate import token_fast

        answered = token_fast.run(argv[1:])
        if answered is not None:
            return answered
    args = build_parser().parse_args(argv)
    if args.command == "token":
        from eksgate.token_cmd import cmd_token

        return cmd_token(args)
    if args.command == "cache":
        from eksgate.token_cmd import cmd_cache_clear

        return cmd_cache_clear(args)
    if args.command == "whoami":
        from eksgate.whoami_cmd import cmd_whoami

        return cmd_whoami(args)
    if args.command == "mcp":
        from eksgate.mcp_server import cmd_mcp

        return cmd_mcp(args)
    if args.command == "kubeconfig":
        from eksgate.token_cmd import cmd_kubeconfig

        return cmd_kubeconfig(args)
    if args.command == "exec":
        from eksgate.exec_cmd import cmd_exec

        return cmd_exec(args)
    if args.command == "policy":
        from eksgate import policy_cmd

        if args.policy_command in ("suggest", "simulate"):
            from eksgate import policy_trail_cmd

            if args.policy_command == "suggest":
                return policy_trail_cmd.cmd_suggest(args, _policy_dir(args.policies))
            return policy_trail_cmd.cmd_simulate(args, _policy_dir(args.dir))
        run = {
            "lint": policy_cmd.cmd_lint,
            "test": policy_cmd.cmd_test,
            "compile": policy_cmd.cmd_compile,
        }[args.policy_command]
        return run(_policy_dir(args.dir))
    if args.command == "can-i":
        from eksgate.policy_cmd import cmd_can_i

        return cmd_can_i(
            _policy_dir(args.policies),
            args.subject,
            args.verb,
            args.resource,
            args.namespace,
            args.cluster,
            args.subresource,
        )
    if args.command == "approvals":
        from eksgate.approvals_cmd import cmd_approvals_wait

        return cmd_approvals_wait(args)
    if args.command == "sessions":
        from eksgate import sessions_cmd

        return {
            "list": sessions_cmd.cmd_sessions_list,
            "show": sessions_cmd.cmd_sessions_show,
            "replay": sessions_cmd.cmd_sessions_replay,
            "verify": sessions_cmd.cmd_sessions_verify,
            "export": sessions_cmd.cmd_sessions_export,
        }[args.sessions_command](args)
    if args.command == "access-entries":
        from eksgate.access_entries import cmd as access_cmd

        return (access_cmd.cmd_plan if args.access_command == "plan" else access_cmd.cmd_apply)(
            args
        )
    if args.command == "infra":
        if args.infra_command == "iam-policy":
            from eksgate.iam_policy import cmd_iam_policy

            return cmd_iam_policy(args)
        from eksgate.infra_render import cmd_render

        return cmd_render(args)
    if args.command == "local":
        return _run_local(args)
    return 2


LOCAL_MISSING = (
    "eksgate local: the local stack is a development tool and is not installed here.\n"
    "It lives in a source checkout of eksgate (devtools/, package eksgate_local): run\n"
    "scripts/bootstrap there, then .venv/bin/eksgate local {command} (or scripts/demo).\n"
)


def _run_local(args: argparse.Namespace) -> int:
    # Imported only here: the agent's and operator's package does not contain the local stack.
    try:
        from eksgate_local import stack
    except ModuleNotFoundError as error:
        if error.name != "eksgate_local":
            raise
        sys.stderr.write(LOCAL_MISSING.format(command=args.local_command))
        return 2
    return stack.up(args) if args.local_command == "up" else stack.demo(args)


if __name__ == "__main__":
    sys.exit(main())
