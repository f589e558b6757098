"""``eksgate exec [-n NS] [-c C] [-i] POD -- CMD ARGS...``: run a command through the gateway.

Also the kubectl plugin ``kubectl-eksgate`` (``kubectl eksgate exec ...``). Without
``--gateway``/``--cluster`` it reads them, the OIDC token source and the CA file from the
kubeconfig context that ``eksgate kubeconfig`` wrote (its exec plugin arguments), and the
namespace from the context. The exit code is the remote command's; stdout and stderr go to
ours; with ``-i`` stdin is read to its end and sent (at most 1 MiB). Other outcomes: 124
when the gateway cut the command at its deadline, 1 when the gateway or the cluster refused
(the reason on stderr), 2 for bad usage.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import urllib.parse
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from eksgate.api_client import CliError, call_api
from eksgate.token_cmd import V1BETA1, obtain_credential, read_oidc_token

MAX_STDIN_BYTES = 1024 * 1024
EXIT_CUT = 124
EXIT_REFUSED = 1


def add_exec_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "exec", help="run a command in a pod through the gateway (recorded, masked)"
    )
    parser.add_argument("-n", "--namespace", default="")
    parser.add_argument("-c", "--container", default="")
    parser.add_argument("-i", "--stdin", action="store_true", help="send our stdin to it")
    parser.add_argument("--timeout", type=int, default=20, help="seconds, at most 25")
    parser.add_argument("--gateway", default="", help="the eksgate API URL (default: kubeconfig)")
    parser.add_argument("--cluster", default="", help="default: from the kubeconfig context")
    parser.add_argument("--ca-file", default="")
    parser.add_argument("--oidc-token-file", default="")
    parser.add_argument("--oidc-token-env", default="")
    parser.add_argument("--kubeconfig", default="")
    parser.add_argument("--context", default="")
    parser.add_argument("pod")
    parser.add_argument("argv", nargs=argparse.REMAINDER, help="-- CMD ARGS...")


def _kubeconfig_path(explicit: str) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get("KUBECONFIG", "")
    if env:
        return Path(env.split(os.pathsep)[0])
    return Path.home() / ".kube" / "config"


def _from_kubeconfig(args: Any) -> dict[str, str]:
    """gateway, cluster, ca_file, token source and namespace from the eksgate context."""
    path = _kubeconfig_path(args.kubeconfig)
    try:
        config = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise CliError(f"cannot read the kubeconfig {path}: {exc}") from None
    name = args.context or config.get("current-context", "")
    context = next(
        (c.get("context") or {} for c in config.get("contexts") or [] if c.get("name") == name),
        None,
    )
    if context is None:
        raise CliError(f"no context {name!r} in {path}; pass --gateway and --cluster")
    user = next(
        (
            u.get("user") or {}
            for u in config.get("users") or []
            if u.get("name") == context.get("user")
        ),
        {},
    )
    plugin = user.get("exec") or {}
    words = list(plugin.get("args") or [])
    if not words or words[0] != "token":
        raise CliError(f"context {name!r} does not use eksgate; pass --gateway and --cluster")
    flags = argparse.ArgumentParser(add_help=False)
    for flag in (
        "--cluster",
        "--gateway",
        "--mode",
        "--oidc-token-file",
        "--oidc-token-env",
        "--ca-file",
    ):
        flags.add_argument(flag, default="")
    known, _ = flags.parse_known_args(words[1:])
    found = {
        "gateway": known.gateway,
        "cluster": known.cluster,
        "ca_file": known.ca_file,
        "oidc_token_file": known.oidc_token_file,
        "oidc_token_env": known.oidc_token_env,
        "namespace": context.get("namespace") or "",
    }
    for entry in plugin.get("env") or []:  # the token's environment variable, if set there
        if entry.get("name") and entry.get("name") not in os.environ and entry.get("value"):
            os.environ[entry["name"]] = entry["value"]
    return found


def _settings(args: Any) -> dict[str, str]:
    settings = {
        "gateway": args.gateway,
        "cluster": args.cluster,
        "ca_file": args.ca_file,
        "oidc_token_file": args.oidc_token_file,
        "oidc_token_env": args.oidc_token_env,
        "namespace": "",
    }
    if not (args.gateway and args.cluster):
        found = _from_kubeconfig(args)
        settings.update({k: v for k, v in found.items() if not settings.get(k)})
    settings["namespace"] = args.namespace or settings["namespace"] or "default"
    return settings


def _read_stdin(stream: BinaryIO) -> bytes:
    data = stream.read(MAX_STDIN_BYTES + 1)
    if len(data) > MAX_STDIN_BYTES:
        raise CliError(f"stdin is over the limit of {MAX_STDIN_BYTES} bytes")
    return data


def write_output(field: Any, stream: BinaryIO) -> None:
    if not isinstance(field, dict):
        return
    if "base64" in field:
        stream.write(base64.b64decode(field["base64"]))
    elif "text" in field:
        stream.write(str(field["text"]).encode("utf-8", errors="surrogateescape"))
    stream.flush()


def cmd_exec(args: Any) -> int:
    argv = list(args.argv)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        print(
            "eksgate: give the command after --: eksgate exec POD -- CMD ARGS...", file=sys.stderr
        )
        return 2
    try:
        settings = _settings(args)
        oidc_token = read_oidc_token(
            settings["oidc_token_file"] or None, settings["oidc_token_env"] or None
        )
        ca_file = settings["ca_file"] or None
        credential = obtain_credential(
            settings["gateway"], settings["cluster"], "gateway", oidc_token, V1BETA1, ca_file
        )
        body: dict[str, Any] = {
            "namespace": settings["namespace"],
            "pod": args.pod,
            "argv": argv,
            "timeout": args.timeout,
        }
        if args.container:
            body["container"] = args.container
        if args.stdin:
            body["stdin"] = base64.b64encode(_read_stdin(sys.stdin.buffer)).decode()
        answer = call_api(
            settings["gateway"],
            "POST",
            f"/v1/exec/{urllib.parse.quote(settings['cluster'], safe='')}",
            token=credential["status"]["token"],
            ca_file=ca_file,
            body=body,
            refusal="eksgate refused the exec",
            retries=0,  # never run a command twice
        )
    except CliError as exc:
        print(f"eksgate: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    write_output(answer.get("stdout"), sys.stdout.buffer)
    write_output(answer.get("stderr"), sys.stderr.buffer)
    for stream in ("stdout", "stderr"):
        if answer.get(f"{stream}_cut_bytes"):
            print(
                f"eksgate: {answer[f'{stream}_cut_bytes']} bytes of {stream} were cut",
                file=sys.stderr,
            )
    if answer.get("outcome") == "cut":
        print(
            f"eksgate: cut at the gateway's deadline; the process is "
            f"{answer.get('remote_process')}",
            file=sys.stderr,
        )
        return EXIT_CUT
    if answer.get("exit_code") is None:
        print(f"eksgate: {answer.get('error') or 'no exit status'}", file=sys.stderr)
        return EXIT_REFUSED
    return int(answer["exit_code"])
