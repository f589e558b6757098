"""The warm-cache path of ``eksgate token``: the standard library's smallest corner only.

kubectl runs the exec plugin for every command, so a cached credential must come back at
the cost of starting Python, not of importing PyJWT, cryptography, urllib3, YAML or boto3.
This module decides whether the on-disk cache can answer, and answers; anything it is not
sure about (an unusual argument, no cached entry, a bad ``KUBERNETES_EXEC_INFO``) returns
``None`` and the full command (``eksgate.token_cmd``) takes over and reports errors.

The cache key functions live here so both paths compute the same key.
"""

from __future__ import annotations

import os
import sys

REFRESH_BEFORE_EXPIRY_SECONDS = 60
DEFAULT_TOKEN_ENV = "EKSGATE_OIDC_TOKEN"
GITHUB_DEFAULT_AUDIENCE = "eksgate"
V1BETA1 = "client.authentication.k8s.io/v1beta1"
V1 = "client.authentication.k8s.io/v1"
API_VERSIONS = (V1BETA1, V1)
# How often one Kubernetes client process asks for a credential without having been refused.
SERVES_PER_CLIENT = 1
VOLATILE_CLAIMS = frozenset({"iat", "exp", "nbf", "jti", "auth_time", "uti", "rh", "nonce"})

# Options of `eksgate token` that take a value, and flags, by their long name.
VALUE_OPTIONS = frozenset(
    {
        "--cluster",
        "--gateway",
        "--mode",
        "--oidc-token-file",
        "--oidc-token-env",
        "--oidc-audience",
        "--ca-file",
    }
)
FLAG_OPTIONS = frozenset({"--github-actions", "--no-cache", "--force-refresh"})


def cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "eksgate", "credentials")


def parse_token_args(argv: list[str]) -> dict[str, str | bool] | None:
    """``eksgate token``'s options as a dict, or None for anything argparse should handle."""
    options: dict[str, str | bool] = {}
    index = 0
    while index < len(argv):
        word = argv[index]
        name, equals, value = word.partition("=")
        if name in FLAG_OPTIONS and not equals:
            options[name] = True
        elif name in VALUE_OPTIONS:
            if not equals:
                index += 1
                if index >= len(argv):
                    return None
                value = argv[index]
            if name in options:
                return None
            options[name] = value
        else:
            return None
        index += 1
    if not options.get("--cluster") or not options.get("--gateway"):
        return None
    if options.get("--mode", "gateway") not in ("gateway", "direct"):
        return None
    return options


def exec_api_version(environ: dict[str, str] | os._Environ[str]) -> str | None:
    """The ExecCredential version kubectl asked for; None when the request is malformed."""
    info = environ.get("KUBERNETES_EXEC_INFO")
    if not info:
        return V1BETA1
    import json

    try:
        version = json.loads(info).get("apiVersion", V1BETA1)
    except (ValueError, AttributeError):
        return None
    return version if version in API_VERSIONS else None


def unverified_claims(token: str) -> dict | None:
    """A JWT's payload, unverified (only to tell identities apart in the cache key)."""
    import binascii
    import json

    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(binascii.a2b_base64(payload.replace("-", "+").replace("_", "/")))
    except (ValueError, binascii.Error):
        return None
    return claims if isinstance(claims, dict) else None


def token_identity(oidc_token: str) -> str:
    """Who an OIDC token names: every claim except those that change with each minting.

    A token with different claims (another environment, another branch) never reuses a
    credential the policy granted to the first; a token refreshed by another process with
    the same claims (a projected service account token) keeps its cache entry.
    """
    import json

    claims = unverified_claims(oidc_token)
    if claims is None:
        return "opaque:" + oidc_token
    stable = {k: v for k, v in claims.items() if k not in VOLATILE_CLAIMS}
    return json.dumps(stable, sort_keys=True)


def sha256_hex(data: bytes) -> str:
    """SHA-256 from the interpreter's own module when it has one: ``hashlib`` loads OpenSSL,
    which costs more than the rest of the warm path together."""
    # CPython's private hash modules have no stubs (typeshed covers only public ones).
    try:
        from _sha2 import sha256  # type: ignore[import-not-found]  # Python 3.12+
    except ImportError:
        try:
            from _sha256 import sha256  # type: ignore[import-not-found]  # Python 3.11
        except ImportError:
            from hashlib import sha256
    return sha256(data).hexdigest()


def github_identity(request_url: str, request_token: str, audience: str) -> str:
    """The identity of a GitHub Actions job without fetching its OIDC token.

    The request token is the job's own and changes with every job, so it separates jobs (and
    with them their claims); only its hash enters the key, never the token.
    """
    digest = sha256_hex(request_token.encode())
    return f"github-actions\n{request_url}\n{audience}\n{digest}"


def cache_key(identity: str, cluster: str, gateway: str, mode: str, api_version: str) -> str:
    """Per identity, cluster, gateway, mode and ExecCredential version."""
    material = "\n".join([identity, cluster, gateway.rstrip("/"), mode, api_version])
    return sha256_hex(material.encode())[:32]


def source_identity(options: dict, environ: dict[str, str] | os._Environ[str]) -> str | None:
    """The cache identity for the token source the options name; None when it is missing."""
    if options.get("--github-actions"):
        url = environ.get("ACTIONS_ID_TOKEN_REQUEST_URL", "")
        request_token = environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "")
        if not url or not request_token:
            return None
        audience = str(options.get("--oidc-audience") or GITHUB_DEFAULT_AUDIENCE)
        return github_identity(url, request_token, audience)
    token_file = options.get("--oidc-token-file")
    if token_file:
        try:
            with open(str(token_file)) as handle:
                token = handle.read().strip()
        except OSError:
            return None
    else:
        token = environ.get(str(options.get("--oidc-token-env") or DEFAULT_TOKEN_ENV), "").strip()
    return token_identity(token) if token else None


def rfc3339_epoch(text: str) -> int | None:
    """``2026-01-02T03:04:05Z`` as seconds since the epoch (no _strptime, no datetime)."""
    if len(text) != 20 or text[4] != "-" or text[10] != "T" or text[19] != "Z":
        return None
    try:
        year, month, day = int(text[0:4]), int(text[5:7]), int(text[8:10])
        hour, minute, second = int(text[11:13]), int(text[14:16]), int(text[17:19])
    except ValueError:
        return None
    # Days from the civil date (Howard Hinnant's algorithm), valid for the proleptic calendar.
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    days = era * 146097 + day_of_era - 719468
    return days * 86400 + hour * 3600 + minute * 60 + second


def cached_credential_text(path: str, now: float) -> str | None:
    """The cached ExecCredential's JSON if it is ours (0600) and lives past the refresh margin."""
    import json

    try:
        status = os.stat(path)
        if status.st_mode & 0o077 or status.st_uid != os.getuid():
            return None  # loosened permissions or another owner: do not trust or reuse it
        with open(path) as handle:
            text = handle.read()
        credential = json.loads(text)
        expires = rfc3339_epoch(credential["status"]["expirationTimestamp"])
        if credential.get("kind") != "ExecCredential" or not credential["status"].get("token"):
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if expires is None or expires - now <= REFRESH_BEFORE_EXPIRY_SECONDS:
        return None
    return text


def parent_marker() -> str:
    """Which client process runs us: the parent's pid and, on Linux, its start time (pids are
    reused) and executable (a version dispatcher such as gcloud's `kubectl` asks once itself,
    then execs the real kubectl under the same pid, which asks again)."""
    parent = os.getppid()
    try:
        with open(f"/proc/{parent}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        executable = os.readlink(f"/proc/{parent}/exe")
        return f"{parent}:{int(fields[19])}:{executable}".replace(" ", "_")
    except (OSError, IndexError, ValueError):
        return str(parent)


def plugin_marker(environ: dict[str, str] | os._Environ[str]) -> str | None:
    """The parent marker when a Kubernetes client runs us as its exec plugin, else None.

    client-go (and the Python client) always set KUBERNETES_EXEC_INFO; a person or script
    running ``eksgate token`` twice from one shell must still hit the cache.
    """
    return parent_marker() if environ.get("KUBERNETES_EXEC_INFO") else None


def served_before(path: str, marker: str) -> bool:
    """Has this cache entry already been given to this very client process?

    client-go runs the plugin once per process and keeps the credential in memory until it
    expires; it runs the plugin again before then only after the API answered 401 (checked
    with kubectl 1.27 to 1.33). So the same kubectl asking again for an unexpired credential
    means the gateway rejected it (a new signing key, a restarted stack): that entry must be
    renewed, not served again. The plugin cannot see the 401 itself: ExecCredential
    v1beta1/v1 carries no response (only v1alpha1 had one).
    """
    try:
        with open(path + ".served") as handle:
            return handle.read().split().count(marker) >= SERVES_PER_CLIENT
    except OSError:
        return False


def note_served(path: str, marker: str) -> None:
    try:
        fd = os.open(path + ".served", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except OSError:
        return
    try:
        os.write(fd, (marker + "\n").encode())
    finally:
        os.close(fd)


def run(argv: list[str]) -> int | None:
    """Answer ``eksgate token ARGV`` from the cache, or None to take the full path."""
    options = parse_token_args(argv)
    if options is None or options.get("--no-cache") or options.get("--force-refresh"):
        return None
    environ = os.environ
    api_version = exec_api_version(environ)
    identity = source_identity(options, environ) if api_version else None
    if identity is None or api_version is None:
        return None
    key = cache_key(
        identity,
        str(options["--cluster"]),
        str(options["--gateway"]),
        str(options.get("--mode", "gateway")),
        api_version,
    )
    path = os.path.join(cache_dir(), key + ".json")
    import time

    text = cached_credential_text(path, time.time())
    if text is None:
        return None
    marker = plugin_marker(environ)
    if marker:
        if served_before(path, marker):
            return None  # the full path sees the same and renews (token_cmd.obtain_credential)
        note_served(path, marker)
    sys.stdout.write(text.rstrip("\n") + "\n")
    sys.stdout.flush()
    return 0
