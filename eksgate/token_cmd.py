"""``eksgate token`` (a kubectl exec credential plugin) and ``eksgate kubeconfig``.

The plugin trades the caller's OIDC token for an eksgate credential and caches it on disk
(0600, per identity, cluster, gateway and mode) until shortly before it expires, so a burst of
kubectl commands calls the broker once.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from eksgate import token_fast
from eksgate.api_client import CliError, call_api

V1BETA1 = token_fast.V1BETA1
API_VERSIONS = token_fast.API_VERSIONS
REFRESH_BEFORE_EXPIRY = timedelta(seconds=token_fast.REFRESH_BEFORE_EXPIRY_SECONDS)
DEFAULT_TOKEN_ENV = token_fast.DEFAULT_TOKEN_ENV
GITHUB_DEFAULT_AUDIENCE = token_fast.GITHUB_DEFAULT_AUDIENCE
MAX_OIDC_TOKEN_BYTES = 16 * 1024


def cache_dir() -> Path:
    return Path(token_fast.cache_dir())


@dataclass(frozen=True)
class OidcSource:
    """Where the caller's OIDC ID token comes from; read afresh whenever one is needed.

    - ``token``: a token already in hand (the API clients of other commands);
    - ``token_file``: a file another process keeps fresh (a projected service account token);
    - ``token_env``: an environment variable (GitLab CI ``id_tokens``, a token set by a wrapper);
    - ``github_actions``: asked of the GitHub Actions runner for ``audience``, so a job longer
      than one OIDC token's life still renews its session.
    """

    token: str | None = None
    token_file: str | None = None
    token_env: str | None = None
    github_actions: bool = False
    audience: str = GITHUB_DEFAULT_AUDIENCE

    def identity(self) -> str:
        """Who the source speaks for, for the cache key, without a network call."""
        if self.github_actions:
            url, request_token = _github_request_env()
            return token_fast.github_identity(url, request_token, self.audience)
        return token_fast.token_identity(self.read())

    def read(self, ca_file: str | None = None) -> str:
        """A current OIDC token; CliError saying what is missing otherwise."""
        if self.token is not None:
            return self.token
        if self.github_actions:
            return fetch_github_actions_token(self.audience, ca_file)
        return read_oidc_token(self.token_file, self.token_env)


def read_oidc_token(token_file: str | None, token_env: str | None) -> str:
    if token_file:
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:
            raise CliError(f"cannot read the OIDC token file {token_file}: {exc.strerror}") from exc
        if not token:
            raise CliError(f"the OIDC token file {token_file} is empty")
    else:
        name = token_env or DEFAULT_TOKEN_ENV
        token = os.environ.get(name, "").strip()
        if not token:
            raise CliError(
                f"no OIDC token: set ${name}, pass --oidc-token-file, or --github-actions "
                "in a GitHub Actions job"
            )
    return token


def _github_request_env() -> tuple[str, str]:
    url = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL", "")
    request_token = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "")
    if not url or not request_token:
        raise CliError(
            "--github-actions needs ACTIONS_ID_TOKEN_REQUEST_URL and "
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN: give the job `permissions: id-token: write`"
        )
    return url, request_token


def fetch_github_actions_token(audience: str, ca_file: str | None = None) -> str:
    """A new OIDC token from the GitHub Actions runner's token endpoint, for ``audience``."""
    import urllib3

    url, request_token = _github_request_env()
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = [(k, v) for k, v in query if k != "audience"] + [("audience", audience)]
    target = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
    http = urllib3.PoolManager(ca_certs=ca_file) if ca_file else urllib3.PoolManager()
    try:
        response = http.request(
            "GET",
            target,
            headers={"Authorization": f"bearer {request_token}", "Accept": "application/json"},
            timeout=urllib3.Timeout(connect=5, read=30),
            retries=urllib3.Retry(2, status=0),
            preload_content=False,
        )
        data = response.read(MAX_OIDC_TOKEN_BYTES * 2)
        response.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        raise CliError(f"cannot reach the GitHub Actions token endpoint: {exc}") from exc
    if response.status != 200:
        raise CliError(
            f"the GitHub Actions token endpoint answered HTTP {response.status}; does the job "
            "have `permissions: id-token: write`?"
        )
    try:
        value = json.loads(data)["value"]
    except (ValueError, KeyError, TypeError):
        raise CliError("the GitHub Actions token endpoint's answer has no token") from None
    if not isinstance(value, str) or not value or len(value) > MAX_OIDC_TOKEN_BYTES:
        raise CliError("the GitHub Actions token endpoint's answer has no usable token")
    return value


def exec_api_version() -> str:
    """The ExecCredential version kubectl asked for through KUBERNETES_EXEC_INFO."""
    info = os.environ.get("KUBERNETES_EXEC_INFO")
    if not info:
        return V1BETA1
    try:
        version = json.loads(info).get("apiVersion", V1BETA1)
    except (json.JSONDecodeError, AttributeError):
        raise CliError("KUBERNETES_EXEC_INFO is not valid JSON") from None
    if version not in API_VERSIONS:
        raise CliError(
            f"kubectl asked for ExecCredential {version}; eksgate supports "
            f"{', '.join(API_VERSIONS)}"
        )
    return version


def cache_key(oidc_token: str, cluster: str, gateway: str, mode: str, api_version: str) -> str:
    """The cache key of a credential for the identity in ``oidc_token`` (see token_fast)."""
    return token_fast.cache_key(
        token_fast.token_identity(oidc_token), cluster, gateway, mode, api_version
    )


def load_cached(path: Path, now: datetime) -> dict[str, Any] | None:
    text = token_fast.cached_credential_text(str(path), now.timestamp())
    return json.loads(text) if text is not None else None


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
    # A new credential has been served to no one yet.
    Path(str(path) + ".served").unlink(missing_ok=True)


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


@dataclass(frozen=True)
class Target:
    """What a credential is for: a cluster through a gateway, in a mode."""

    gateway: str
    cluster: str
    mode: str = "gateway"
    ca_file: str | None = None


def credential_for(
    source: OidcSource,
    target: Target,
    api_version: str = V1BETA1,
    *,
    use_cache: bool = True,
    force_refresh: bool = False,
    plugin_marker: str | None = None,
) -> dict[str, Any]:
    """An ExecCredential from the on-disk cache, or from the broker (then cached).

    ``force_refresh`` skips the cached entry (and replaces it); ``plugin_marker`` names the
    Kubernetes client that runs us as its exec plugin: an unexpired entry that this same
    client already received must have been rejected (client-go re-runs the plugin only
    after a 401), so it is renewed instead of served again.
    """
    identity = source.identity()
    key = token_fast.cache_key(identity, target.cluster, target.gateway, target.mode, api_version)
    path = cache_dir() / (key + ".json")
    credential = None
    if use_cache and not force_refresh:
        credential = load_cached(path, datetime.now(UTC))
        if credential is not None and plugin_marker:
            if token_fast.served_before(str(path), plugin_marker):
                credential = None
    if credential is None:
        oidc_token = source.read(target.ca_file)
        credential = request_credential(
            target.gateway, oidc_token, target.cluster, target.mode, api_version, target.ca_file
        )
        if use_cache:
            store_cached(path, credential)
    if use_cache and plugin_marker:
        token_fast.note_served(str(path), plugin_marker)
    return credential


def obtain_credential(
    gateway: str,
    cluster: str,
    mode: str,
    oidc_token: str,
    api_version: str,
    ca_file: str | None,
    use_cache: bool = True,
) -> dict[str, Any]:
    """An ExecCredential for an OIDC token already in hand (cached like ``eksgate token``)."""
    return credential_for(
        OidcSource(token=oidc_token),
        Target(gateway, cluster, mode, ca_file),
        api_version,
        use_cache=use_cache,
    )


def source_from_args(args: Any) -> OidcSource:
    return OidcSource(
        token_file=getattr(args, "oidc_token_file", None) or None,
        token_env=getattr(args, "oidc_token_env", None) or None,
        github_actions=bool(getattr(args, "github_actions", False)),
        audience=getattr(args, "oidc_audience", None) or GITHUB_DEFAULT_AUDIENCE,
    )


def cmd_token(args: Any) -> int:
    try:
        credential = credential_for(
            source_from_args(args),
            Target(args.gateway, args.cluster, args.mode, args.ca_file),
            exec_api_version(),
            use_cache=not args.no_cache,
            force_refresh=args.force_refresh,
            plugin_marker=token_fast.plugin_marker(os.environ),
        )
    except CliError as exc:
        print(f"eksgate: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(json.dumps(credential) + "\n")
    sys.stdout.flush()
    return 0


def cmd_cache_clear(args: Any) -> int:
    """Remove every cached credential (the next kubectl command asks the broker again)."""
    directory = cache_dir()
    removed = 0
    for entry in directory.glob("*") if directory.is_dir() else []:
        if entry.suffix in (".json", ".served") or entry.name.startswith(".tmp-"):
            entry.unlink(missing_ok=True)
            removed += entry.suffix == ".json"
    print(f"removed {removed} cached credential(s) from {directory}", file=sys.stderr)
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
    github_actions: bool = False,
    audience: str = "",
) -> dict[str, Any]:
    """A kubeconfig with one cluster, user and context that uses ``eksgate token``."""
    name = context or f"eksgate-{cluster}"
    args = ["token", "--cluster", cluster, "--gateway", gateway, "--mode", mode]
    if token_file:
        args += ["--oidc-token-file", token_file]
    if token_env:
        args += ["--oidc-token-env", token_env]
    if github_actions:
        args += ["--github-actions"]
    if audience:
        args += ["--oidc-audience", audience]
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
    merged: dict[str, Any] = dict(existing) if existing else {"apiVersion": "v1", "kind": "Config"}
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
        github_actions=getattr(args, "github_actions", False),
        audience=getattr(args, "oidc_audience", "") or "",
    )
    import yaml

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
