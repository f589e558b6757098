"""What a Kubernetes API request asks for, resolved the way kube-apiserver resolves it.

``resolve`` mirrors ``RequestInfoFactory.NewRequestInfo`` in
``k8s.io/apiserver/pkg/endpoints/request/requestinfo.go`` (APIPrefixes ``{"api", "apis"}``,
GrouplessAPIPrefixes ``{"api"}``), so a policy is evaluated against the same verb, resource,
namespace and name that the API server's own authorizer would see.

It is also the gate that makes "decided as one thing, executed as another" impossible: it
refuses every path whose meaning could differ between us and the API server (dot segments,
empty segments, any percent-escape, backslashes, control or non-ASCII characters), so the path
it resolved is the path the gateway forwards, byte for byte. Queries are parsed as Go's
``url.ParseQuery`` does; the gateway should forward ``canonical_query(query)``, which Go parses
back to exactly the values that were resolved.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chalicelib.errors import BadRequest, MethodNotAllowed


@dataclass(frozen=True)
class KubeRequest:
    """A resolved Kubernetes API request (kube-apiserver's ``RequestInfo``).

    For non-resource requests (``/version``, ``/healthz``, discovery roots) ``verb`` is the
    lower-cased HTTP method and only ``path`` is meaningful.
    """

    verb: str
    path: str
    is_resource_request: bool = True
    api_prefix: str = ""
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    command: tuple[str, ...] | None = None  # pods/exec through /v1/exec: the argv to run

    @property
    def resource_with_subresource(self) -> str:
        """``pods/log`` style, the form policies name resources in."""
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


class ParsedQuery(dict[str, list[str]]):
    """A query ``parse_query`` has already checked: ``resolve`` and ``canonical_query`` take it
    as it is, so a request's query is parsed once, however many steps read it."""


Query = str | Mapping[str, str | Sequence[str]] | None

MAX_PATH_LENGTH = 4096

# Everything a Kubernetes client sends. Anything else (TRACE, CONNECT, WebDAV verbs, lower-case
# spellings, which Go treats as different methods) is refused rather than given kube's empty
# verb, so no policy can ever be asked about a method we did not think about.
ALLOWED_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

_API_PREFIXES = frozenset({"api", "apis"})
_GROUPLESS_API_PREFIXES = frozenset({"api"})
_SPECIAL_VERBS = frozenset({"proxy", "watch"})
_SPECIAL_VERBS_NO_SUBRESOURCES = frozenset({"proxy"})
_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
_METHOD_VERBS = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}

# RFC 3986 pchar without percent-escapes and without ';' (which some intermediaries treat as
# a path-parameter separator). Kubernetes names are DNS labels/subdomains, RBAC names may add
# ':' and '@'; nothing legitimate needs more.
_PATH_CHARS = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,=:@/]*")
_QUERY_CHARS = re.compile(r"[\x21-\x7e]*")
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_GO_INT64 = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def resolve(method: str, path: str, query: Query = None) -> KubeRequest:
    """Resolve an HTTP request into the ``KubeRequest`` kube-apiserver would authorize.

    ``path`` is the Kubernetes API path exactly as it will be forwarded (``/api/v1/pods``).
    ``query`` is the raw query string (without ``?``) or a mapping of name to value(s) that is
    already decoded. Raises ``MethodNotAllowed`` for methods outside ``ALLOWED_METHODS`` and
    ``BadRequest`` for any path or query whose meaning could be ambiguous.

    Behaviour follows kube-apiserver: paths and names are case-sensitive; ``HEAD`` resolves like
    ``GET`` on resources (``get``/``list``/``watch``); ``OPTIONS`` on a resource gets the empty
    verb, which no policy should match; non-resource requests get the lower-cased method.
    """
    if method not in ALLOWED_METHODS:
        raise MethodNotAllowed(
            f"method {method!r} is not supported; use one of {', '.join(sorted(ALLOWED_METHODS))}"
        )
    _check_path(path)
    values = query if isinstance(query, ParsedQuery) else parse_query(query)

    info = _Info(verb=method.lower(), path=path)
    parts = _split_path(path)
    # Fewer than three parts, or an unknown prefix, is a non-resource request (/, /api, /version).
    if len(parts) < 3 or parts[0] not in _API_PREFIXES:
        return info.freeze()
    info.api_prefix = parts[0]
    parts = parts[1:]
    if info.api_prefix not in _GROUPLESS_API_PREFIXES:
        # /apis/{group}/{version} alone is group discovery, not a resource.
        if len(parts) < 3:
            return info.freeze()
        info.api_group = parts[0]
        parts = parts[1:]

    info.is_resource_request = True
    info.api_version = parts[0]
    parts = parts[1:]

    if parts[0] in _SPECIAL_VERBS:
        # Legacy /watch/... and /proxy/... prefixes name the verb in the path.
        if len(parts) < 2:
            raise BadRequest(f"unable to determine kind and namespace from url {path!r}")
        info.verb = parts[0]
        parts = parts[1:]
    else:
        info.verb = _METHOD_VERBS.get(method, "")

    if parts[0] == "namespaces":
        # Server-side apply creates a namespace with PATCH /namespaces/{name}; kube does not
        # treat that name as the request's namespace.
        if len(parts) == 2 and info.verb == "patch":
            info.namespace = ""
        elif len(parts) > 1:
            info.namespace = parts[1]
            # /namespaces/{ns}/{resource}/... is a namespaced resource, except for the
            # namespace's own subresources (/namespaces/{ns}/status, /finalize).
            if len(parts) > 2 and parts[2] not in _NAMESPACE_SUBRESOURCES:
                parts = parts[2:]

    # parts: resource/name/subresource/anything/else/uninterpreted
    if len(parts) >= 3 and info.verb not in _SPECIAL_VERBS_NO_SUBRESOURCES:
        info.subresource = parts[2]
    if len(parts) >= 2:
        info.name = parts[1]
    info.resource = parts[0]

    if not info.name and info.verb == "get":
        options = _decode_list_options(values)
        if options is None:
            # kube logs the decode error, ignores all options but a raw ``watch`` value, and
            # resolves to list or watch; the handler then rejects the request with 400.
            watch_values = values.get("watch", [])
            watch = bool(watch_values) and watch_values[0].lower() not in ("false", "0")
            info.verb = "watch" if watch else "list"
        else:
            watch, selected_name = options
            info.verb = "watch" if watch else "list"
            # A list or watch narrowed to one object by fieldSelector=metadata.name=X is
            # authorized as that object, exactly as kube does.
            if selected_name is not None and _is_valid_path_segment_name(selected_name):
                info.name = selected_name
    if not info.name and info.verb == "delete":
        info.verb = "deletecollection"
    return info.freeze()


def parse_query(query: Query) -> ParsedQuery:
    """Parse a query the way Go's ``url.ParseQuery`` does, refusing what Go would drop.

    Returns name -> values in order (``url.Values``; kube reads the first value). Go silently
    drops pairs containing ``;`` or malformed escapes; we refuse them instead, because a pair we
    ignore but an intermediary keeps would make the request mean two things. Decoded names and
    values must be UTF-8 without control characters.
    """
    if query is None:
        return ParsedQuery()
    values = ParsedQuery()
    if isinstance(query, str):
        if not _QUERY_CHARS.fullmatch(query) or "#" in query:
            raise BadRequest("query string must be printable ASCII without spaces or '#'")
        for pair in query.split("&"):
            if not pair:
                continue
            if ";" in pair:
                raise BadRequest("query string may not contain ';'; separate parameters with '&'")
            raw_key, _, raw_value = pair.partition("=")
            values.setdefault(_query_unescape(raw_key), []).append(_query_unescape(raw_value))
    elif isinstance(query, Mapping):
        for key, value in query.items():
            if not isinstance(key, str):
                raise TypeError(f"query parameter names must be str, not {type(key).__name__}")
            items = [value] if isinstance(value, str) else list(value)
            if not all(isinstance(item, str) for item in items):
                raise TypeError(f"query parameter {key!r} must be a str or a sequence of str")
            values.setdefault(key, []).extend(items)
    else:
        raise TypeError(f"query must be a str or a mapping, not {type(query).__name__}")
    for key, items in values.items():
        if _CONTROL.search(key) or any(_CONTROL.search(item) for item in items):
            raise BadRequest(f"query parameter {key!r} contains a control character")
    return values


def canonical_query(query: Query) -> str:
    """The query as Go's ``url.Values.Encode`` writes it: names sorted, values in order.

    Stable for approval fingerprints (the same parameters give the same string however the
    client ordered or escaped them), and safe to forward: Go parses it back to exactly the
    values ``resolve`` saw. Spaces become ``+``; everything but ``A-Za-z0-9-_.~`` is escaped.
    """
    values = query if isinstance(query, ParsedQuery) else parse_query(query)
    pairs = []
    for key in sorted(values):
        escaped_key = urllib.parse.quote_plus(key, safe="")
        for value in values[key]:
            pairs.append(f"{escaped_key}={urllib.parse.quote_plus(value, safe='')}")
    return "&".join(pairs)


# Paths granted to every authenticated user by the bootstrap ClusterRoles ``system:discovery``
# (get on /livez /readyz /healthz /version /version/ /openapi /openapi/* /api /api/* /apis
# /apis/*) and ``system:public-info-viewer`` (a subset: health and version). Listed in
# plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go. RBAC matches a URL exactly or, for
# a rule ending in '*', by prefix, and only for non-resource requests with verb ``get``: so
# /healthz/etcd is not included, and /api/v1/pods is a resource request, not discovery.
_DISCOVERY_PATHS = frozenset(
    {"/livez", "/readyz", "/healthz", "/version", "/version/", "/openapi", "/api", "/apis"}
)
_DISCOVERY_PREFIXES = ("/openapi/", "/api/", "/apis/")


def is_discovery(req: KubeRequest) -> bool:
    """True if every authenticated Kubernetes user may make this request by default.

    These are the non-resource ``get`` requests the ``system:discovery`` and
    ``system:public-info-viewer`` ClusterRoles grant: API discovery, OpenAPI, version, health.
    """
    if req.is_resource_request or req.verb != "get":
        return False
    return req.path in _DISCOVERY_PATHS or req.path.startswith(_DISCOVERY_PREFIXES)


@dataclass
class _Info:
    """Mutable working copy while resolving; frozen into a ``KubeRequest`` at the end."""

    verb: str
    path: str
    is_resource_request: bool = False
    api_prefix: str = ""
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""

    def freeze(self) -> KubeRequest:
        return KubeRequest(
            verb=self.verb,
            path=self.path,
            is_resource_request=self.is_resource_request,
            api_prefix=self.api_prefix,
            api_group=self.api_group,
            api_version=self.api_version,
            namespace=self.namespace,
            resource=self.resource,
            subresource=self.subresource,
            name=self.name,
        )


def _check_path(path: str) -> None:
    """Refuse any path whose meaning could differ between eksgate and the API server."""
    if not isinstance(path, str):
        raise BadRequest("path must be a string")
    if len(path) > MAX_PATH_LENGTH:
        raise BadRequest(f"path is longer than {MAX_PATH_LENGTH} characters")
    if not path.startswith("/"):
        raise BadRequest("path must start with '/'")
    if _CONTROL.search(path):
        raise BadRequest("path contains a control character")
    if not path.isascii():
        raise BadRequest("path contains a non-ASCII character")
    if "%" in path:
        # Go decodes the path once before kube resolves it; proxies in between may decode it
        # again, or not at all. Kubernetes names may never contain '%' (or an encoded '/'), so
        # refusing every escape loses no legitimate request and guarantees that the string we
        # resolved is the string the API server resolves.
        raise BadRequest(
            "path may not contain '%' (percent-encoding); Kubernetes object names never need it"
        )
    if "\\" in path:
        raise BadRequest("path may not contain a backslash")
    if not _PATH_CHARS.fullmatch(path):
        bad = next(ch for ch in path if not _PATH_CHARS.fullmatch(ch))
        raise BadRequest(f"path may not contain {bad!r}")
    # One trailing slash is allowed (kube ignores it, and so do we); any other empty segment
    # is refused because intermediaries disagree on whether '//' collapses.
    segments = path[1:].split("/")
    if segments[-1] == "":
        segments.pop()
    for segment in segments:
        if segment == "":
            raise BadRequest("path may not contain an empty segment ('//')")
        if segment in (".", ".."):
            raise BadRequest(f"path may not contain a {segment!r} segment")


def _split_path(path: str) -> list[str]:
    """kube's splitPath: trim surrounding slashes, split on '/'."""
    trimmed = path.strip("/")
    return trimmed.split("/") if trimmed else []


def _query_unescape(text: str) -> str:
    """Go's ``url.QueryUnescape``, refusing malformed escapes and non-UTF-8 results."""
    if _BAD_ESCAPE.search(text):
        raise BadRequest(f"query string has a malformed percent-escape in {text[:64]!r}")
    try:
        return urllib.parse.unquote_to_bytes(text.replace("+", " ")).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("query string does not decode to UTF-8") from None


class _DecodeError(Exception):
    """A ListOptions query parameter that kube's parameter codec would fail to convert."""


def _decode_list_options(values: dict[str, list[str]]) -> tuple[bool, str | None] | None:
    """(watch, exact metadata.name) as kube's ListOptions decoding gives them, or None on error.

    Mirrors the conversions of ``ParameterCodec.DecodeParameters`` into internal ListOptions
    that can fail: integers (``timeoutSeconds``, ``limit``) and the field selector. The label
    selector grammar is not re-implemented; a malformed one makes kube reject the request with
    400 before it runs, so the only difference is the name recorded for a request that fails.
    """
    try:
        for key in ("timeoutSeconds", "limit"):
            if values.get(key):
                _go_parse_int64(values[key][0])
        field_selector = values["fieldSelector"][0] if values.get("fieldSelector") else ""
        name = _selector_exact_name(field_selector)
    except _DecodeError:
        return None
    watch_values = values.get("watch", [])
    return bool(watch_values) and not _go_false(watch_values[0]), name


def _go_false(value: str) -> bool:
    """``runtime.Convert_Slice_string_To_bool``: only "0" and "false" (EqualFold) are false."""
    # Go's EqualFold also folds U+017F (long s) to 's'; no other rune folds into "false".
    return value == "0" or (
        len(value) == 5
        and all(ch in "fFaAlLsS\u017feE" for ch in value)
        and value.replace("\u017f", "s").lower() == "false"
    )


def _go_parse_int64(value: str) -> int:
    """``strconv.ParseInt(value, 10, 64)``."""
    if not _GO_INT64.fullmatch(value):
        raise _DecodeError(value)
    number = int(value)
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise _DecodeError(value)
    return number


def _selector_exact_name(selector: str) -> str | None:
    """``fields.ParseSelector(selector).RequiresExactMatch("metadata.name")``."""
    terms = []
    # Terms are sorted before parsing, so the first metadata.name term after sorting wins.
    for term in sorted(_split_selector_terms(selector)):
        if term == "":
            continue
        split = _split_selector_term(term)
        if split is None:
            raise _DecodeError(term)
        field, operator, raw_value = split
        value = _unescape_selector_value(raw_value)
        # Transform drops a term with neither field nor value (it selects everything).
        if field == "" and value == "":
            continue
        terms.append((field, operator, value))
    for field, operator, value in terms:
        if field == "metadata.name" and operator != "!=":
            return value
    return None


def _split_selector_terms(selector: str) -> list[str]:
    """fields.splitTerms: split on ',' except backslash-escaped ones (escapes kept)."""
    if not selector:
        return []
    terms = []
    start = 0
    in_slash = False
    for index, ch in enumerate(selector):
        if in_slash:
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch == ",":
            terms.append(selector[start:index])
            start = index + 1
    terms.append(selector[start:])
    return terms


def _split_selector_term(term: str) -> tuple[str, str, str] | None:
    """fields.splitTerm: the first operator occurrence splits; '!=' and '==' before '='."""
    for index in range(len(term)):
        for operator in ("!=", "==", "="):
            if term.startswith(operator, index):
                return term[:index], operator, term[index + len(operator) :]
    return None


def _unescape_selector_value(value: str) -> str:
    r"""fields.UnescapeValue: '\\', '\,' and '\=' are escapes; bare ',' or '=' are errors."""
    if not any(ch in value for ch in "\\,="):
        return value
    out = []
    in_slash = False
    for ch in value:
        if in_slash:
            if ch not in "\\,=":
                raise _DecodeError(value)
            out.append(ch)
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch in ",=":
            raise _DecodeError(value)
        else:
            out.append(ch)
    if in_slash:
        raise _DecodeError(value)
    return "".join(out)


def _is_valid_path_segment_name(name: str) -> bool:
    """apimachinery path.IsValidPathSegmentName: not '.' or '..', no '/' or '%'."""
    return name not in (".", "..") and "/" not in name and "%" not in name
