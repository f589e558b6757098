"""``eksgate token`` (a kubectl exec credential plugin) and ``eksgate kubeconfig``.

The plugin trades the caller's OIDC token for an eksgate credential and caches it on disk
(0600, per identity, cluster, gateway and mode) until shortly before it expires, so a burst of
kubectl commands calls the broker once.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jwt
import yaml

from chalicelib.credentials.exec_credential import API_VERSIONS, V1BETA1
from eksgate.api_client import CliError, call_api

REFRESH_BEFORE_EXPIRY = timedelta(seconds=60)
DEFAULT_TOKEN_ENV = "EKSGATE_OIDC_TOKEN"
VOLATILE_CLAIMS = frozenset({"iat", "exp", "nbf", "jti", "auth_time", "uti", "rh", "nonce"})


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "eksgate" / "credentials"


def read_oidc_token(token_file: str | None, token_env: str | None) -> str:
    if token_file:
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:
            raise CliError(f"cannot read the OIDC token file {token_file}: {exc.strerror}")
    else:
        name = token_env or DEFAULT_TOKEN_ENV
        token = os.environ.get(name, "").strip()
        if not token:
            raise CliError(f"no OIDC token: set ${name} or pass --oidc-token-file")
    return token


def exec_api_version() -> str:
    """The ExecCredential version kubectl asked for through KUBERNETES_EXEC_INFO."""
    info = os.environ.get("KUBERNETES_EXEC_INFO")
    if not info:
        return V1BETA1
    try:
        version = json.loads(info).get("apiVersion", V1BETA1)
    except (json.JSONDecodeError, AttributeError):
        raise CliError("KUBERNETES_EXEC_INFO is not valid JSON")
    if version not in API_VERSIONS:
        raise CliError(
            f"kubectl asked for ExecCredential {version}; eksgate supports "
            f"{', '.join(API_VERSIONS)}"
        )
    return version


def cache_key(oidc_token: str, cluster: str, gateway: str, mode: str, api_version: str) -> str:
    """Per identity, cluster, gateway, mode and version.

    The identity is every claim of the token except the ones that change with each token
    minted (times, ids), so a token with different claims (another environment, another
    branch) never reuses a credential the policy granted to the first.
    """
    try:
        claims = jwt.decode(oidc_token, options={"verify_signature": False})
        stable = {k: v for k, v in claims.items() if k not in VOLATILE_CLAIMS}
        who = json.dumps(stable, sort_keys=True, default=str)
    except jwt.PyJWTError:
        who = oidc_token
    material = "\n".join([who, cluster, gateway.rstrip("/"), mode, api_version])
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def load_cached(path: Path, now: datetime) -> dict[str, Any] | None:
    try:
        if path.stat().st_mode & 0o077:
            return None  # someone loosened the permissions: do not trust or reuse it
        credential = json.loads(path.read_text())
        expires = datetime.strptime(
            credential["status"]["expirationTimestamp"], "%Y-%m-%dT%H:%M:%SZ"
        ).replace(tzinfo=timezone.utc)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return credential if expires - now > REFRESH_BEFORE_EXPIRY else None


def store_cached(path: Path, credential: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(credential, handle)
        os.replace(temporary, path)  # atomic: a concurrent kubectl never reads half a file
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def request_credential(
    gateway: str,
    oidc_token: str,
    cluster: str,
    mode: str,
    api_version: str,
    ca_file: str | None = None,
) -> dict[str, Any]:
    body = call_api(
        gateway,
        "POST",
        "/v1/token",
        token=oidc_token,
        ca_file=ca_file,
        body={"cluster": cluster, "mode": mode, "apiVersion": api_version},
        refusal="eksgate refused the token request",
    )
    if body.get("kind") != "ExecCredential":
        raise CliError("the gateway's answer is not an ExecCredential")
    return body


def obtain_credential(
    gateway: str,
    cluster: str,
    mode: str,
    oidc_token: str,
    api_version: str,
    ca_file: str | None,
    use_cache: bool = True,
) -> dict[str, Any]:
    """An ExecCredential from the on-disk cache, or from the broker (then cached)."""
    path = cache_dir() / (cache_key(oidc_token, cluster, gateway, mode, api_version) + ".json")
    credential = load_cached(path, datetime.now(timezone.utc)) if use_cache else None
    if credential is None:
        credential = request_credential(gateway, oidc_token, cluster, mode, api_version, ca_file)
        if use_cache:
            store_cached(path, credential)
    return credential


def cmd_token(args: Any) -> int:
    try:
        oidc_token = read_oidc_token(args.oidc_token_file, args.oidc_token_env)
        credential = obtain_credential(
            args.gateway,
            args.cluster,
            args.mode,
            oidc_token,
            exec_api_version(),
            args.ca_file,
            not args.no_cache,
        )
    except CliError as exc:
        print(f"eksgate: {exc}", file=sys.stderr)
        return 1
    json.dump(credential, sys.stdout)
    sys.stdout.write("\n")
    return 0


def kubeconfig_entry(
    cluster: str,
    gateway: str,
    *,
    mode: str = "gateway",
    server: str = "",
    ca_data: str = "",
    token_file: str = "",
    token_env: str = "",
    context: str = "",
    command: str = "eksgate",
    ca_file: str = "",
) -> dict[str, Any]:
    """A kubeconfig with one cluster, user and context that uses ``eksgate token``."""
    name = context or f"eksgate-{cluster}"
    args = ["token", "--cluster", cluster, "--gateway", gateway, "--mode", mode]
    if token_file:
        args += ["--oidc-token-file", token_file]
    if token_env:
        args += ["--oidc-token-env", token_env]
    if ca_file:
        args += ["--ca-file", ca_file]
    cluster_entry: dict[str, Any] = {"server": server or f"{gateway.rstrip('/')}/k8s/{cluster}"}
    if ca_data:
        cluster_entry["certificate-authority-data"] = ca_data
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{"name": name, "cluster": cluster_entry}],
        "users": [
            {
                "name": name,
                "user": {
                    "exec": {
                        "apiVersion": V1BETA1,
                        "command": command,
                        "args": args,
                        "interactiveMode": "Never",
                        "provideClusterInfo": False,
                        "installHint": "install the eksgate CLI: pip install eksgate (see README)",
                    }
                },
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }


def merge_kubeconfig(existing: dict[str, Any], entry: dict[str, Any]) -> dict[str, Any]:
    """``existing`` with ``entry``'s cluster, user and context replaced or added."""
    merged = dict(existing) if existing else {"apiVersion": "v1", "kind": "Config"}
    for section in ("clusters", "users", "contexts"):
        names = {item["name"] for item in entry[section]}
        merged[section] = [i for i in merged.get(section) or [] if i.get("name") not in names]
        merged[section] += entry[section]
    merged["current-context"] = entry["current-context"]
    return merged


def cmd_kubeconfig(args: Any) -> int:
    if args.mode == "direct" and not args.server:
        print(
            "eksgate: direct mode talks to the EKS endpoint itself: pass --server (and "
            "--certificate-authority-data) from `aws eks describe-cluster`",
            file=sys.stderr,
        )
        return 2
    entry = kubeconfig_entry(
        args.cluster,
        args.gateway,
        mode=args.mode,
        server=args.server,
        ca_data=args.certificate_authority_data,
        token_file=args.oidc_token_file,
        token_env=args.oidc_token_env,
        context=args.context,
        ca_file=args.ca_file,
    )
    if not args.merge:
        yaml.safe_dump(entry, sys.stdout, sort_keys=False)
        return 0
    target = Path(args.merge).expanduser()
    existing = yaml.safe_load(target.read_text()) if target.exists() else {}
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(merge_kubeconfig(existing or {}, entry), sort_keys=False))
    os.chmod(target, 0o600)
    print(f"wrote context {entry['current-context']} to {target}", file=sys.stderr)
    return 0
