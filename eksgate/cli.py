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
    source.add_argument("--oidc-token-env", help="environment variable holding the OIDC token "
                        "(default EKSGATE_OIDC_TOKEN)")
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
    can_i.add_argument("--subject", required=True, type=Path,
                       help="YAML/JSON file of the caller's token claims (iss, sub, ...)")
    can_i.add_argument("verb")
    can_i.add_argument("resource", help="TYPE[.GROUP][/NAME] as kubectl takes it, or a /path")
    can_i.add_argument("-n", "--namespace", default="")
    can_i.add_argument("--cluster", default="demo")
    can_i.add_argument("--subresource", default="")
    can_i.add_argument("--policies", help="policy directory (default: the app's policies/)")

    local = commands.add_parser("local", help="the whole system on loopback, no AWS account")
    local_commands = local.add_subparsers(dest="local_command", required=True)
    up = local_commands.add_parser("up", help="start everything until Ctrl-C")
    up.add_argument("--kubeconfig", default=".eksgate-local/kubeconfig")
    up.add_argument("--state-file", help="write the stack's addresses here as JSON when ready")
    up.add_argument("--policies", help="policy directory (default: the app's policies/)")
    up.add_argument("--gateway-port", type=int, default=0, help="default: a free port")
    up.add_argument("--quiet", action="store_true", help="do not print Slack messages")
    up.add_argument("--approval-wait", type=float, default=5.0,
                    help="seconds a request waits for a decision before answering 403")
    up.add_argument("--watch-timeout", type=int, default=20,
                    help="seconds a watch through the gateway lasts before clients reconnect")
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
        return cmd_can_i(_policy_dir(args.policies), args.subject, args.verb, args.resource,
                         args.namespace, args.cluster, args.subresource)
    if args.command == "local":
        from eksgate.local import stack
        return stack.up(args) if args.local_command == "up" else stack.demo(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
