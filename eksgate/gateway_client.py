"""A Kubernetes client that speaks only to the eksgate gateway, for tools like ``eksgate mcp``.

Every request goes to ``{gateway}/k8s/{cluster}/...`` (or ``{gateway}/v1/...``) over HTTPS
with the gateway session token that ``eksgate token`` would print, from the same on-disk
cache; policy, approvals, masking and audit therefore apply unchanged. A 401 (a key rotated,
a stack restarted) renews the session once and tries again.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import urllib3

from eksgate.api_client import CliError

MAX_ANSWER_BYTES = 8 * 1024 * 1024

# A session token for the gateway; ``renew=True`` means the last one was refused.
SessionTokens = Callable[[bool], str]


@dataclass(frozen=True)
class Answer:
    """What the gateway answered: status, content type and body (JSON when it is JSON)."""

    status: int
    content_type: str
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return None

    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Sent:
    """A request exactly as sent, so an approved one can be sent again byte for byte."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    content_type: str | None = None


@dataclass
class GatewayClient:
    gateway: str
    cluster: str
    tokens: SessionTokens
    ca_file: str | None = None
    http: urllib3.PoolManager = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.http is None:
            self.http = (
                urllib3.PoolManager(ca_certs=self.ca_file)
                if self.ca_file
                else urllib3.PoolManager()
            )

    def kube_url(self, path: str) -> str:
        return f"{self.gateway.rstrip('/')}/k8s/{self.cluster}{path}"

    def send(self, sent: Sent, *, api: bool = False, accept: str = "application/json") -> Answer:
        """Send ``sent`` to the Kubernetes API (or, with ``api``, to the gateway's own API)."""
        base = self.gateway.rstrip("/") + sent.path if api else self.kube_url(sent.path)
        url = base + ("?" + urllib.parse.urlencode(sent.query) if sent.query else "")
        headers = {"Accept": accept, "User-Agent": "eksgate-mcp"}
        if sent.content_type:
            headers["Content-Type"] = sent.content_type
        answer = self._send_once(sent.method, url, sent.body, headers, self.tokens(False))
        if answer.status == 401:
            answer = self._send_once(sent.method, url, sent.body, headers, self.tokens(True))
        return answer

    def _send_once(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str], token: str
    ) -> Answer:
        try:
            response = self.http.request(
                method,
                url,
                body=body,
                headers={**headers, "Authorization": f"Bearer {token}"},
                timeout=urllib3.Timeout(connect=5, read=60),
                retries=urllib3.Retry(1, status=0, redirect=0),
                preload_content=False,
            )
            try:
                data = response.read(MAX_ANSWER_BYTES + 1)
            finally:
                response.release_conn()
        except urllib3.exceptions.HTTPError as exc:
            raise CliError(f"cannot reach the eksgate gateway at {self.gateway}: {exc}") from exc
        if len(data) > MAX_ANSWER_BYTES:
            raise CliError(
                f"the answer is larger than {MAX_ANSWER_BYTES} bytes; narrow the request "
                "(a label selector, a limit)"
            )
        return Answer(response.status, response.headers.get("Content-Type", ""), data)

    def get_json(self, path: str, query: Mapping[str, str] | None = None) -> Answer:
        return self.send(Sent("GET", path, tuple((query or {}).items())))


@dataclass(frozen=True)
class ApiResource:
    """One resource type from discovery: where its objects live."""

    group: str
    version: str
    name: str  # plural, as in URLs and policies
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    singular: str = ""

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        return f"{self.name}.{self.group}" if self.group else self.name

    def path(self, namespace: str = "", name: str = "", subresource: str = "") -> str:
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        parts = [prefix]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{_segment(namespace)}")
        parts.append(self.name)
        if name:
            parts.append(_segment(name))
        if subresource:
            parts.append(_segment(subresource))
        return "/".join(parts)


def _segment(value: str) -> str:
    """A path segment the gateway accepts: names only, no slashes, dots or escapes."""
    allowed = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._:@"
    if not value or value in (".", "..") or not all(c in allowed for c in value):
        raise CliError(f"{value!r} is not a Kubernetes name")
    return value


class ResourceCatalog:
    """Resource types by plural, singular, short name or kind (``deploy``, ``Deployment``,
    ``deployments.apps``), learned from the cluster's discovery documents through the gateway
    (discovery is open to every session)."""

    def __init__(self, client: GatewayClient) -> None:
        self._client = client
        self._core: list[ApiResource] | None = None
        self._groups: dict[str, list[ApiResource]] = {}
        self._preferred: dict[str, str] | None = None

    def _discover(self, path: str, group: str, version: str) -> list[ApiResource]:
        answer = self._client.get_json(path)
        document = answer.json() if answer.ok else None
        if not isinstance(document, dict):
            raise CliError(f"discovery {path} failed (HTTP {answer.status})")
        return [
            ApiResource(
                group=group,
                version=version,
                name=item["name"],
                kind=item.get("kind", ""),
                namespaced=bool(item.get("namespaced")),
                short_names=tuple(item.get("shortNames") or ()),
                singular=item.get("singularName", ""),
            )
            for item in document.get("resources") or []
            if isinstance(item, dict) and "/" not in item.get("name", "/")
        ]

    def _preferred_versions(self) -> dict[str, str]:
        if self._preferred is None:
            answer = self._client.get_json("/apis")
            document = answer.json() if answer.ok else None
            if not isinstance(document, dict):
                raise CliError(f"discovery /apis failed (HTTP {answer.status})")
            self._preferred = {
                g["name"]: (g.get("preferredVersion") or g["versions"][0])["version"]
                for g in document.get("groups") or []
                if isinstance(g, dict) and g.get("name")
            }
        return self._preferred

    def _group(self, group: str, version: str = "") -> list[ApiResource]:
        if not group:
            if self._core is None:
                self._core = self._discover("/api/v1", "", "v1")
            return self._core
        version = version or self._preferred_versions().get(group, "")
        if not version:
            raise CliError(f"the cluster serves no API group {group!r}")
        key = f"{group}/{version}"
        if key not in self._groups:
            self._groups[key] = self._discover(f"/apis/{group}/{version}", group, version)
        return self._groups[key]

    def find(self, text: str) -> ApiResource:
        """The resource type ``text`` names, as kubectl reads ``TYPE[.GROUP]``."""
        name, _, group = text.strip().partition(".")
        wanted = name.lower()
        candidates = (
            [(group, "")]
            if group
            else [("", "")] + [(g, "") for g in sorted(self._preferred_versions())]
        )
        for candidate_group, version in candidates:
            for resource in self._group(candidate_group, version):
                if wanted in (resource.name, resource.singular, resource.kind.lower()) or (
                    wanted in resource.short_names
                ):
                    return resource
        raise CliError(f"the cluster has no resource type {text!r}")

    def for_kind(self, api_version: str, kind: str) -> ApiResource:
        """The resource type of a manifest's ``apiVersion`` and ``kind``."""
        group, _, version = api_version.rpartition("/")
        for resource in self._group(group, version):
            if resource.kind == kind:
                return resource
        raise CliError(f"the cluster has no kind {kind!r} in {api_version!r}")
