"""The ``eksgate`` command: credentials for agents, policy tools, the local stack."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from chalicelib.config import DEFAULT_POLICY_DIR


def _policy_dir(value: str | None) -> Path:
    return Path(value) if value else DEFAULT_POLICY_DIR


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="eksgate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    token = commands.add_parser("token", help="print an ExecCredential (kubectl exec plugin)")
    token.add_argument("--cluster", required=True)
    token.add_argument("--gateway", required=True, help="the eksgate API URL")
    token.add_argument("--mode", choices=["gateway", "direct"], default="gateway")
    source = token.add_mutually_exclusive_group()
    source.add_argument("--oidc-token-file", help="file holding the OIDC ID token")
    source.add_argument(
        "--oidc-token-env",
        help="environment variable holding the OIDC token (default EKSGATE_OIDC_TOKEN)",
    )
    token.add_argument("--no-cache", action="store_true", help="always ask the broker")
    token.add_argument("--ca-file", help="CA bundle to verify the gateway with (default: system)")

    kubeconfig = commands.add_parser("kubeconfig", help="print or merge a kubeconfig entry")
    kubeconfig.add_argument("--cluster", required=True)
    kubeconfig.add_argument("--gateway", required=True)
    kubeconfig.add_argument("--mode", choices=["gateway", "direct"], default="gateway")
    kubeconfig.add_argument("--server", default="", help="direct mode: the EKS endpoint")
    kubeconfig.add_argument("--certificate-authority-data", default="")
    kubeconfig.add_argument("--oidc-token-file", default="")
    kubeconfig.add_argument("--oidc-token-env", default="")
    kubeconfig.add_argument("--context", default="")
    kubeconfig.add_argument("--ca-file", default="", help="CA bundle for a private gateway")
    kubeconfig.add_argument("--merge", metavar="KUBECONFIG", help="merge into this file")

    policy = commands.add_parser("policy", help="check policies")
    policy_commands = policy.add_subparsers(dest="policy_command", required=True)
    lint = policy_commands.add_parser("lint", help="validate policies and warn about mistakes")
    lint.add_argument("dir", nargs="?")
    test = policy_commands.add_parser("test", help="run the cases in DIR/tests/*.yaml")
    test.add_argument("dir", nargs="?")

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

    approvals = commands.add_parser("approvals", help="follow approval requests")
    approvals_commands = approvals.add_subparsers(dest="approvals_command", required=True)
    wait = approvals_commands.add_parser(
        "wait",
        help="wait until an approval is decided (exit 0 approved, 1 refused, 2 still pending)",
    )
    wait.add_argument("approval_id")
    wait.add_argument("--cluster", required=True)
    wait.add_argument("--timeout", type=float, default=900.0, help="seconds (default 900)")
    api_client_arguments(wait)

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
    args = build_parser().parse_args(argv)
    if args.command == "token":
        from eksgate.token_cmd import cmd_token

        return cmd_token(args)
    if args.command == "kubeconfig":
        from eksgate.token_cmd import cmd_kubeconfig

        return cmd_kubeconfig(args)
    if args.command == "policy":
        from eksgate import policy_cmd

        run = policy_cmd.cmd_lint if args.policy_command == "lint" else policy_cmd.cmd_test
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
