"""A skeletal OpenAPI v3 endpoint, just enough for ``kubectl apply`` and ``kubectl create``.

kubectl (``--validate=strict``, the default) asks ``/openapi/v3`` whether each endpoint
accepts the ``fieldValidation`` query parameter; if the documents cannot be downloaded it
refuses to send anything. These documents list every resource path with its
``x-kubernetes-group-version-kind`` and the query parameters kube-apiserver accepts, but no
schemas: kubectl then leaves validation to the server and computes strategic merge patches
from its compiled-in types (the same fallback it uses for any server without schemas).
``kubectl explain`` therefore has nothing to explain here.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .discovery import Discovery, ResourceInfo

Object = dict[str, Any]

_WRITE_PARAMS = ("dryRun", "fieldManager", "fieldValidation", "pretty")
_LIST_PARAMS = (
    "allowWatchBookmarks",
    "continue",
    "fieldSelector",
    "labelSelector",
    "limit",
    "resourceVersion",
    "resourceVersionMatch",
    "sendInitialEvents",
    "timeoutSeconds",
    "watch",
    "pretty",
)


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def _params(names: tuple[str, ...]) -> list[Object]:
    return [
        {"name": n, "in": "query", "schema": {"type": "string", "uniqueItems": True}} for n in names
    ]


def _operation(info: ResourceInfo, action: str, params: tuple[str, ...]) -> Object:
    return {
        "operationId": f"{action}{info.kind}",
        "parameters": _params(params),
        "responses": {"200": {"description": "OK"}, "401": {"description": "Unauthorized"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {
            "group": info.group,
            "version": info.version,
            "kind": info.kind,
        },
    }


def _paths(discovery: Discovery, group: str, version: str) -> Object:
    doc = discovery.resource_list(group, version) or {}
    paths: Object = {}
    for res in doc.get("resources", []):
        if "/" in res["name"]:
            continue
        info = discovery.resource(group, version, res["name"])
        if info is None:
            continue
        base = "/" + _gv_path(group, version)
        scope = (
            f"{base}/namespaces/{{namespace}}/{info.name}"
            if info.namespaced
            else f"{base}/{info.name}"
        )
        collection: Object = {}
        if "list" in info.verbs:
            collection["get"] = _operation(info, "list", _LIST_PARAMS)
        if "create" in info.verbs:
            collection["post"] = _operation(info, "post", _WRITE_PARAMS)
        if "deletecollection" in info.verbs:
            collection["delete"] = _operation(info, "deletecollection", _LIST_PARAMS + ("dryRun",))
        if collection:
            paths[scope] = collection
        item: Object = {}
        if "get" in info.verbs:
            item["get"] = _operation(info, "get", ("pretty",))
        if "update" in info.verbs:
            item["put"] = _operation(info, "put", _WRITE_PARAMS)
        if "patch" in info.verbs:
            item["patch"] = _operation(info, "patch", _WRITE_PARAMS + ("force",))
        if "delete" in info.verbs:
            item["delete"] = _operation(
                info, "delete", ("dryRun", "gracePeriodSeconds", "propagationPolicy", "pretty")
            )
        if item:
            paths[f"{scope}/{{name}}"] = item
    return paths


def _group_versions(discovery: Discovery) -> list[tuple[str, str]]:
    gvs = [("", "v1")]
    for group in discovery.group_list()["groups"]:
        for version in group["versions"]:
            gvs.append((group["name"], version["version"]))
    return gvs


class OpenApiV3:
    """Builds (once, lazily) and serves the skeletal OpenAPI v3 documents."""

    def __init__(self, discovery: Discovery) -> None:
        self._discovery = discovery
        self._documents: dict[tuple[str, str], str] = {}

    def _document_json(self, group: str, version: str) -> str:
        key = (group, version)
        if key not in self._documents:
            self._documents[key] = json.dumps(
                {
                    "openapi": "3.0.0",
                    "info": {"title": "Kubernetes", "version": "v1.31.4"},
                    "paths": _paths(self._discovery, group, version),
                    "components": {"schemas": {}},
                },
                separators=(",", ":"),
                sort_keys=True,
            )
        return self._documents[key]

    def root(self) -> Object:
        """``/openapi/v3``: the per group-version document index with content hashes."""
        paths: Object = {}
        for group, version in _group_versions(self._discovery):
            digest = (
                hashlib.sha512(self._document_json(group, version).encode())
                .hexdigest()[:128]
                .upper()
            )
            path = _gv_path(group, version)
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
        return {"paths": paths}

    def document(self, gv_path: str) -> str | None:
        """``/openapi/v3/{api/v1|apis/g/v}`` as JSON text, or None for an unknown group-version."""
        parts = gv_path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "api":
            group, version = "", parts[1]
        elif len(parts) == 3 and parts[0] == "apis":
            group, version = parts[1], parts[2]
        else:
            return None
        if not self._discovery.has_group_version(group, version):
            return None
        return self._document_json(group, version)
