"""Bearer-token authentication for the Kubernetes API emulator.

An authenticator is any ``Callable[[str], str | None]``: bearer token in, principal out (or
None, which the server answers with 401). Two are provided:

* :class:`StaticTokenAuthenticator` — a fixed ``{token: principal}`` table.
* :class:`EksTokenAuthenticator` — accepts EKS bearer tokens (``k8s-aws-v1.`` + base64url of a
  presigned STS ``GetCallerIdentity`` URL, see ``chalicelib/credentials/eks_token.py``) the way
  aws-iam-authenticator does: strict structural checks, then the presigned request is
  replayed against the local STS emulation (moto) to learn the caller's ARN.

Limits of the EKS authenticator, compared with a real EKS control plane:

* moto does not verify SigV4 signatures and does not read the access key from a presigned
  query string. The replay therefore also sends an ``Authorization`` header built from the
  token's own ``X-Amz-Credential``/``X-Amz-Signature`` (moto routes the request to STS and
  resolves the caller from that header), and always sends ``x-k8s-aws-id: <cluster_name>``
  (the configured cluster) rather than anything taken from the token.
* Because moto will not reject a token signed for another cluster, the authenticator (by
  default) checks the SigV4 signature itself, with ``x-k8s-aws-id`` set to the configured
  cluster name. It learns the secret key from moto's ``/moto-api/data.json`` debug endpoint,
  which exposes the credentials moto issued. Against an STS emulation without that endpoint,
  pass ``verify_signature=False``: the structural checks still apply, but then a token
  minted for another cluster name is accepted (the signed cluster id cannot be checked).
* moto answers unknown access keys with a default identity (``…:user/moto``); that answer is
  rejected, as real STS would reject the request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.credentials.eks_token import CLUSTER_ID_HEADER, TOKEN_PREFIX, decode_eks_token

log = logging.getLogger(__name__)

Authenticator = Callable[[str], "str | None"]

# What aws-iam-authenticator accepts (pkg/token/token.go parameterWhitelist).
ALLOWED_QUERY_PARAMETERS = frozenset(
    {
        "Action",
        "Version",
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Security-Token",
        "X-Amz-Signature",
    }
)
REQUIRED_QUERY_PARAMETERS = ALLOWED_QUERY_PARAMETERS - {"X-Amz-Security-Token"}
TOKEN_MAX_AGE = timedelta(minutes=15)
MAX_PRESIGN_EXPIRES = 900
_REGIONAL_STS_HOST = re.compile(r"^sts\.([a-z]{2}(?:-[a-z]+)+-\d)\.amazonaws\.com$")
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+$")
_ACCESS_KEY_ID = re.compile(r"^[A-Z0-9]{16,128}$")
_AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_STS_NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"
# moto's answer for credentials it did not issue (sts/models.py get_caller_identity).
_MOTO_DEFAULT_USER_ID = "AKIAIOSFODNN7EXAMPLE"


class StaticTokenAuthenticator:
    """Authenticate bearer tokens from a fixed ``{token: principal}`` table."""

    def __init__(self, tokens: Mapping[str, str]) -> None:
        self._lock = threading.Lock()
        self._tokens = dict(tokens)

    def add(self, token: str, principal: str) -> None:
        """Accept ``token`` as ``principal`` from now on."""
        with self._lock:
            self._tokens[token] = principal

    def remove(self, token: str) -> None:
        """Stop accepting ``token``."""
        with self._lock:
            self._tokens.pop(token, None)

    def __call__(self, token: str) -> str | None:
        with self._lock:
            items = list(self._tokens.items())
        # Constant-time comparison: cheap, and keeps the habit even in a test tool.
        for known, principal in items:
            if hmac.compare_digest(known.encode(), token.encode()):
                return principal
        return None

    def __repr__(self) -> str:
        return f"StaticTokenAuthenticator({len(self._tokens)} tokens)"


class EksTokenError(ValueError):
    """The token is not an acceptable EKS token; the message says why (never the token)."""


@dataclass(frozen=True)
class PresignedCallerIdentity:
    """The checked contents of an EKS token's presigned GetCallerIdentity URL."""

    url: str
    host: str
    region: str
    query: str
    params: dict[str, str]
    access_key_id: str
    signed_at: datetime

    @property
    def credential_scope(self) -> str:
        """``date/region/sts/aws4_request``."""
        return self.params["X-Amz-Credential"].split("/", 1)[1]


def parse_eks_token(token: str, *, now: datetime | None = None) -> PresignedCallerIdentity:
    """Decode ``token`` and check its structure as aws-iam-authenticator does (stricter)."""
    now = now or datetime.now(UTC)
    if not token.startswith(TOKEN_PREFIX):
        raise EksTokenError("token does not start with k8s-aws-v1.")
    body = token[len(TOKEN_PREFIX) :]
    if not body or not _BASE64URL.match(body):
        raise EksTokenError("token body is not unpadded base64url")
    try:
        url = decode_eks_token(token)
    except ValueError as exc:
        raise EksTokenError(str(exc)) from exc
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https":
        raise EksTokenError("presigned URL is not https")
    if parts.username or parts.password or parts.port is not None:
        raise EksTokenError("presigned URL must not carry userinfo or a port")
    host = parts.hostname or ""
    if parts.netloc != host:
        raise EksTokenError("presigned URL host is not canonical")
    match = _REGIONAL_STS_HOST.match(host)
    if match:
        region = match.group(1)
    elif host == "sts.amazonaws.com":
        region = "us-east-1"
    else:
        raise EksTokenError(f"unexpected STS host {host!r}")
    if parts.path != "/":
        raise EksTokenError("presigned URL path must be /")
    if parts.fragment:
        raise EksTokenError("presigned URL must not have a fragment")
    try:
        pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True)
    except ValueError as exc:
        raise EksTokenError("malformed query string") from exc
    params: dict[str, str] = {}
    for key, value in pairs:
        if key not in ALLOWED_QUERY_PARAMETERS:
            raise EksTokenError(f"query parameter {key!r} is not allowed")
        if key in params:
            raise EksTokenError(f"query parameter {key!r} is repeated")
        params[key] = value
    missing = sorted(REQUIRED_QUERY_PARAMETERS - params.keys())
    if missing:
        raise EksTokenError(f"missing query parameters: {', '.join(missing)}")
    if params["Action"] != "GetCallerIdentity":
        raise EksTokenError("Action must be GetCallerIdentity")
    if params["Version"] != "2011-06-15":
        raise EksTokenError("unsupported STS API version")
    if params["X-Amz-Algorithm"] != "AWS4-HMAC-SHA256":
        raise EksTokenError("X-Amz-Algorithm must be AWS4-HMAC-SHA256")
    signed_headers = params["X-Amz-SignedHeaders"].split(";")
    if CLUSTER_ID_HEADER not in signed_headers:
        raise EksTokenError(f"{CLUSTER_ID_HEADER} is not a signed header")
    if not set(signed_headers) <= {"host", CLUSTER_ID_HEADER} or "host" not in signed_headers:
        raise EksTokenError("signed headers must be exactly host and x-k8s-aws-id")
    try:
        expires = int(params["X-Amz-Expires"])
    except ValueError as exc:
        raise EksTokenError("X-Amz-Expires is not an integer") from exc
    if not 0 < expires <= MAX_PRESIGN_EXPIRES:
        raise EksTokenError(f"X-Amz-Expires must be between 1 and {MAX_PRESIGN_EXPIRES}")
    try:
        signed_at = datetime.strptime(params["X-Amz-Date"], _AMZ_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError as exc:
        raise EksTokenError("X-Amz-Date is malformed") from exc
    if abs(now - signed_at) > TOKEN_MAX_AGE:
        raise EksTokenError("token is expired (X-Amz-Date more than 15 minutes away)")
    credential = params["X-Amz-Credential"].split("/")
    if len(credential) != 5:
        raise EksTokenError("X-Amz-Credential is malformed")
    access_key_id, scope_date, scope_region, scope_service, terminator = credential
    if not _ACCESS_KEY_ID.match(access_key_id):
        raise EksTokenError("X-Amz-Credential has a malformed access key id")
    if scope_date != params["X-Amz-Date"][:8]:
        raise EksTokenError("credential scope date does not match X-Amz-Date")
    if scope_region != region or scope_service != "sts" or terminator != "aws4_request":
        raise EksTokenError("credential scope does not match the STS endpoint")
    if not re.fullmatch(r"[0-9a-f]{64}", params["X-Amz-Signature"]):
        raise EksTokenError("X-Amz-Signature is malformed")
    return PresignedCallerIdentity(
        url=url,
        host=host,
        region=region,
        query=parts.query,
        params=params,
        access_key_id=access_key_id,
        signed_at=signed_at,
    )


def _sigv4_quote(value: str) -> str:
    return urllib.parse.quote(value, safe="-_.~")


def presigned_signature(
    presigned: PresignedCallerIdentity, secret_access_key: str, cluster_name: str
) -> str:
    """The SigV4 query signature the URL must carry if it was signed for ``cluster_name``."""
    params = presigned.params
    canonical_query = "&".join(
        f"{_sigv4_quote(k)}={_sigv4_quote(v)}"
        for k, v in sorted(params.items())
        if k != "X-Amz-Signature"
    )
    headers = {"host": presigned.host, CLUSTER_ID_HEADER: cluster_name}
    signed = params["X-Amz-SignedHeaders"].split(";")
    canonical_headers = "".join(f"{name}:{headers[name]}\n" for name in signed)
    canonical_request = "\n".join(
        [
            "GET",
            "/",
            canonical_query,
            canonical_headers,
            params["X-Amz-SignedHeaders"],
            hashlib.sha256(b"").hexdigest(),  # presigned GET: hash of the empty body
        ]
    )
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            params["X-Amz-Date"],
            presigned.credential_scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = ("AWS4" + secret_access_key).encode()
    for part in presigned.credential_scope.split("/"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


STATE_DUMP_TIMEOUT = 30.0


def moto_secret_lookup(endpoint_url: str, *, timeout: float = 5.0) -> Callable[[str], str | None]:
    """Return ``access_key_id -> secret`` backed by moto's ``/moto-api/data.json``.

    That endpoint dumps moto's state, including the secret keys of the credentials it issued
    (STS AssumeRole sessions, IAM access keys). Only a local emulation exposes this.
    """
    data_url = endpoint_url.rstrip("/") + "/moto-api/data.json"

    def lookup(access_key_id: str) -> str | None:
        with urllib.request.urlopen(data_url, timeout=timeout) as resp:  # noqa: S310 - loopback
            data = json.load(resp)
        return _find_secret(data, access_key_id)

    return lookup


def _find_secret(node: Any, access_key_id: str) -> str | None:
    if isinstance(node, dict):
        if node.get("access_key_id") == access_key_id and isinstance(
            node.get("secret_access_key"), str
        ):
            return node["secret_access_key"]
        children: Iterable[Any] = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        found = _find_secret(child, access_key_id)
        if found is not None:
            return found
    return None


class EksTokenAuthenticator:
    """Authenticate EKS bearer tokens against a local STS emulation (moto server)."""

    def __init__(
        self,
        sts_endpoint_url: str,
        cluster_name: str,
        *,
        verify_signature: bool = True,
        secret_lookup: Callable[[str], str | None] | None = None,
        cache_ttl: float = 60.0,
        timeout: float = 5.0,
    ) -> None:
        parts = urllib.parse.urlsplit(sts_endpoint_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"sts_endpoint_url must be an http(s) URL, got {sts_endpoint_url!r}")
        if not cluster_name:
            raise ValueError("cluster_name is required")
        self._base = f"{parts.scheme}://{parts.netloc}"
        self.cluster_name = cluster_name
        self._verify_signature = verify_signature
        # The dump holds all of moto's state (every audit item the tests wrote too): it grows
        # as a test run goes on, and on a loaded machine takes seconds to build.
        self._secret_lookup = secret_lookup or moto_secret_lookup(
            self._base, timeout=max(timeout, STATE_DUMP_TIMEOUT)
        )
        self._cache_ttl = cache_ttl
        self._timeout = timeout
        self._cache: dict[str, tuple[str, float]] = {}
        # Secret keys never change for an access key id; moto's state dump can be large.
        self._secrets: dict[str, str] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"EksTokenAuthenticator(sts={self._base!r}, cluster={self.cluster_name!r})"

    def __call__(self, token: str) -> str | None:
        try:
            return self.resolve(token)
        except EksTokenError as exc:
            log.info("rejected EKS token: %s", exc)
            return None

    def _cached(self, key: str) -> str | None:
        now = time.monotonic()
        with self._lock:
            entry = self._cache.get(key)
            if entry is None:
                return None
            if entry[1] <= now:
                del self._cache[key]
                return None
            return entry[0]

    def _remember(self, key: str, principal: str, signed_at: datetime) -> None:
        # Never cache past the token's own validity.
        remaining = (signed_at + TOKEN_MAX_AGE - datetime.now(UTC)).total_seconds()
        ttl = min(self._cache_ttl, remaining)
        if ttl <= 0:
            return
        now = time.monotonic()
        with self._lock:
            if len(self._cache) >= 1024:
                for stale in [k for k, (_, exp) in self._cache.items() if exp <= now] or list(
                    self._cache
                )[:256]:
                    self._cache.pop(stale, None)
            self._cache[key] = (principal, now + ttl)

    def resolve(self, token: str) -> str:
        """Return the caller ARN for ``token``; raise :class:`EksTokenError` if unacceptable."""
        presigned = parse_eks_token(token)
        cache_key = hashlib.sha256(token.encode()).hexdigest()
        cached = self._cached(cache_key)
        if cached is not None:
            return cached
        if self._verify_signature:
            self._check_signature(presigned)
        principal = self._replay(presigned)
        self._remember(cache_key, principal, presigned.signed_at)
        return principal

    def _check_signature(self, presigned: PresignedCallerIdentity) -> None:
        with self._lock:
            secret = self._secrets.get(presigned.access_key_id)
        if secret is None:
            try:
                secret = self._secret_lookup(presigned.access_key_id)
            except (OSError, ValueError) as exc:
                raise EksTokenError(f"cannot look up the signing key: {exc}") from exc
            if secret is None:
                raise EksTokenError("unknown access key id")
            with self._lock:
                if len(self._secrets) >= 4096:
                    self._secrets.clear()
                self._secrets[presigned.access_key_id] = secret
        expected = presigned_signature(presigned, secret, self.cluster_name)
        if not hmac.compare_digest(expected, presigned.params["X-Amz-Signature"]):
            raise EksTokenError(
                "signature mismatch: the token was not signed for this cluster (or was altered)"
            )

    def _replay(self, presigned: PresignedCallerIdentity) -> str:
        params = presigned.params
        request = urllib.request.Request(
            f"{self._base}/?{presigned.query}",
            method="GET",
            headers={
                # The configured cluster, never a value from the token.
                CLUSTER_ID_HEADER: self.cluster_name,
                # moto ignores X-Amz-Credential in the query: give it the same credential in
                # a header, from which it routes to STS and resolves the caller.
                "Authorization": (
                    f"AWS4-HMAC-SHA256 Credential={params['X-Amz-Credential']}, "
                    f"SignedHeaders={params['X-Amz-SignedHeaders']}, "
                    f"Signature={params['X-Amz-Signature']}"
                ),
                "Accept": "application/xml",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as resp:  # noqa: S310
                body = resp.read()
        except urllib.error.HTTPError as exc:
            raise EksTokenError(f"STS rejected the presigned request (HTTP {exc.code})") from exc
        except OSError as exc:
            raise EksTokenError(f"STS emulation unreachable: {exc}") from exc
        try:
            root = ET.fromstring(body)
        except ET.ParseError as exc:
            raise EksTokenError("STS answered with something other than XML") from exc
        arn = root.findtext(f"{_STS_NS}GetCallerIdentityResult/{_STS_NS}Arn")
        user_id = root.findtext(f"{_STS_NS}GetCallerIdentityResult/{_STS_NS}UserId")
        if not arn:
            raise EksTokenError("STS response carries no caller ARN")
        if user_id == _MOTO_DEFAULT_USER_ID and arn.endswith(":user/moto"):
            raise EksTokenError("STS does not know the token's access key")
        return arn


def bearer_token(authorization: str | None) -> str | None:
    """Extract the token from an ``Authorization: Bearer …`` header value."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
