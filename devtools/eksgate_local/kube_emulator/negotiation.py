"""Content negotiation: which representation a request's ``Accept`` header asks for.

kube-apiserver clients list alternatives in order (kubectl: Table v1, Table v1beta1, then
plain JSON; aggregated discovery v2, v2beta1, then legacy JSON). The first one the emulator
can produce wins; if none can, the answer is 406 NotAcceptable, as kube does.
"""

from __future__ import annotations

from dataclasses import dataclass

from .discovery import AGGREGATED_CONTENT_TYPE
from .errors import ApiError
from .tables import TABLE_GROUP, TABLE_VERSIONS


@dataclass(frozen=True)
class OutputFormat:
    """The chosen representation: json, table, metadata (PartialObjectMetadata) or aggregated."""

    kind: str  # json | table | metadata | aggregated
    version: str = "v1"


def parse_accept(header: str | None) -> list[tuple[str, dict[str, str]]]:
    """Split an Accept header into (media type, parameters), in the client's order."""
    if not header or not header.strip():
        return [("application/json", {})]
    entries = []
    for part in header.split(","):
        pieces = [p.strip() for p in part.split(";")]
        mime = pieces[0].lower()
        params = {}
        for piece in pieces[1:]:
            if "=" in piece:
                key, _, value = piece.partition("=")
                params[key.strip()] = value.strip()
        entries.append((mime, params))
    return entries


def _is_json(mime: str) -> bool:
    return mime in ("application/json", "*/*", "application/*")


def negotiate_resource_format(accept: str | None) -> OutputFormat:
    """Pick JSON, Table or PartialObjectMetadata for a resource response (406 otherwise)."""
    for mime, params in parse_accept(accept):
        if not _is_json(mime):
            continue
        as_kind = params.get("as")
        if as_kind is None:
            return OutputFormat("json")
        if params.get("g") != TABLE_GROUP or params.get("v") not in TABLE_VERSIONS:
            continue
        if as_kind == "Table":
            return OutputFormat("table", params["v"])
        if as_kind in ("PartialObjectMetadata", "PartialObjectMetadataList"):
            return OutputFormat("metadata", params["v"])
    raise ApiError(
        406,
        "NotAcceptable",
        "only the following media types are accepted: application/json, "
        "application/json;as=Table;v=v1;g=meta.k8s.io, "
        "application/json;as=PartialObjectMetadata;v=v1;g=meta.k8s.io",
    )


def negotiate_discovery_format(accept: str | None) -> OutputFormat:
    """Aggregated (apidiscovery.k8s.io/v2) or legacy discovery, per the Accept list order."""
    for mime, params in parse_accept(accept):
        if not _is_json(mime):
            continue
        if "as" not in params:
            return OutputFormat("json")
        if (
            params.get("as") == "APIGroupDiscoveryList"
            and params.get("g") == "apidiscovery.k8s.io"
            and params.get("v") == "v2"
        ):
            return OutputFormat("aggregated")
    raise ApiError(
        406,
        "NotAcceptable",
        "only the following media types are accepted: application/json, " + AGGREGATED_CONTENT_TYPE,
    )
