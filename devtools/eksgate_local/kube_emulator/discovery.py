"""Discovery documents and the resource registry derived from them.

The documents are the real ones from kubernetes/kubernetes (see
``eksgate/fixtures/kubernetes/SOURCES.md``). ``/api/v1`` and the per-group
``APIResourceList`` files are served verbatim; for a group-version without its own file the
list is derived from the aggregated (``apidiscovery.k8s.io/v2``) document, so every
group-version advertised by ``/apis`` answers. The aggregated document for the core group
(``/api``) is derived from ``api__v1.json`` because upstream ships none.

Every top-level resource in those documents becomes storable in the emulator: what
discovery advertises, the store accepts (verbs permitting).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Any

AGGREGATED_MEDIA_PARAMS = {"g": "apidiscovery.k8s.io", "v": "v2", "as": "APIGroupDiscoveryList"}
AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

# A version EKS offers in standard support (1.35: released on EKS in January 2026, standard
# support until March 2027), in EKS's format. Clients choose behaviour by it (the gcloud kubectl
# dispatcher even picks its kubectl binary by it), so it must be current, not a retired one.
VERSION_INFO: dict[str, str] = {
    "major": "1",
    "minor": "35+",
    "gitVersion": "v1.35.0-eks-3cfe0ce",
    "gitCommit": "3cfe0ce8a3b1c6b1f4a5f2b5cbd0c5c2d1c7f3a9",
    "gitTreeState": "clean",
    "buildDate": "2026-01-20T00:00:00Z",
    "goVersion": "go1.25.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}


@dataclass(frozen=True)
class ResourceInfo:
    """One top-level resource of one group-version, as discovery describes it."""

    group: str
    version: str
    name: str
    kind: str
    namespaced: bool
    verbs: frozenset[str]
    singular: str = ""
    short_names: tuple[str, ...] = ()
    subresources: frozenset[str] = field(default_factory=frozenset)

    @property
    def api_version(self) -> str:
        """``v1`` for the core group, ``group/version`` otherwise."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> tuple[str, str]:
        """Storage key: objects are shared across versions of the same group and resource."""
        return (self.group, self.name)


def _fixture_dir() -> Any:
    return resources.files("eksgate").joinpath("fixtures", "kubernetes", "discovery")


@cache
def _load(name: str) -> Any:
    return json.loads(_fixture_dir().joinpath(name).read_text(encoding="utf-8"))


def _fixture_name(group: str, version: str) -> str:
    return f"apis__{group}__{version}.json"


def _exists(name: str) -> bool:
    return _fixture_dir().joinpath(name).is_file()


class Discovery:
    """Serves discovery documents and knows every resource the emulator can store."""

    def __init__(self) -> None:
        self._core_list: dict[str, Any] = _load("api__v1.json")
        self._group_list: dict[str, Any] = _load("apis.json")
        self._aggregated: dict[str, Any] = _load("aggregated_v2.json")
        self._resource_lists: dict[tuple[str, str], dict[str, Any]] = {("", "v1"): self._core_list}
        for group in self._group_list["groups"]:
            for version in group["versions"]:
                key = (group["name"], version["version"])
                name = _fixture_name(*key)
                if _exists(name):
                    self._resource_lists[key] = _load(name)
                else:
                    self._resource_lists[key] = self._derive_resource_list(*key)
        self._registry: dict[tuple[str, str, str], ResourceInfo] = {}
        for (group, version), doc in self._resource_lists.items():
            self._index(group, version, doc)

    # ----- registry -----------------------------------------------------------------------

    def _index(self, group: str, version: str, doc: dict[str, Any]) -> None:
        subresources: dict[str, set[str]] = {}
        for res in doc.get("resources", []):
            if "/" in res["name"]:
                parent, sub = res["name"].split("/", 1)
                subresources.setdefault(parent, set()).add(sub)
        for res in doc.get("resources", []):
            if "/" in res["name"]:
                continue
            self._registry[(group, version, res["name"])] = ResourceInfo(
                group=group,
                version=version,
                name=res["name"],
                kind=res["kind"],
                namespaced=bool(res.get("namespaced")),
                verbs=frozenset(res.get("verbs", [])),
                singular=res.get("singularName") or res["kind"].lower(),
                short_names=tuple(res.get("shortNames", [])),
                subresources=frozenset(subresources.get(res["name"], set())),
            )

    def resource(self, group: str, version: str, name: str) -> ResourceInfo | None:
        """The resource ``name`` of ``group/version``, or None if discovery does not list it."""
        return self._registry.get((group, version, name))

    def resource_for_kind(self, group: str, kind: str) -> ResourceInfo | None:
        """The preferred-version resource for ``kind`` in ``group`` (used by the seeder)."""
        preferred = self.preferred_version(group)
        for info in self._registry.values():
            if info.group == group and info.kind == kind and info.version == preferred:
                return info
        return None

    def preferred_version(self, group: str) -> str | None:
        """The preferred version of ``group`` (``v1`` for the core group)."""
        if group == "":
            return "v1"
        for entry in self._group_list["groups"]:
            if entry["name"] == group:
                return entry["preferredVersion"]["version"]
        return None

    def has_group_version(self, group: str, version: str) -> bool:
        """Whether ``/apis/{group}/{version}`` (or ``/api/v1``) exists."""
        return (group, version) in self._resource_lists

    # ----- documents ----------------------------------------------------------------------

    def core_versions(self, server_address: str) -> dict[str, Any]:
        """``/api`` (APIVersions), with this server's address in place of the fixture's."""
        doc = copy.deepcopy(_load("api.json"))
        doc["serverAddressByClientCIDRs"] = [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ]
        return doc

    def group_list(self) -> dict[str, Any]:
        """``/apis`` (legacy APIGroupList)."""
        doc = copy.deepcopy(self._group_list)
        doc.setdefault("kind", "APIGroupList")
        return doc

    def group(self, name: str) -> dict[str, Any] | None:
        """``/apis/{group}`` (APIGroup), or None for an unknown group."""
        for entry in self._group_list["groups"]:
            if entry["name"] == name:
                doc = {"kind": "APIGroup", "apiVersion": "v1"}
                doc.update(copy.deepcopy(entry))
                return doc
        return None

    def resource_list(self, group: str, version: str) -> dict[str, Any] | None:
        """``/api/v1`` or ``/apis/{group}/{version}`` (APIResourceList), or None."""
        doc = self._resource_lists.get((group, version))
        if doc is None:
            return None
        doc = copy.deepcopy(doc)
        # The core fixture omits apiVersion; kube-apiserver sends it on every list.
        doc.setdefault("kind", "APIResourceList")
        doc.setdefault("apiVersion", "v1")
        return doc

    def aggregated_apis(self) -> dict[str, Any]:
        """``/apis`` as ``apidiscovery.k8s.io/v2`` APIGroupDiscoveryList."""
        return copy.deepcopy(self._aggregated)

    def aggregated_core(self) -> dict[str, Any]:
        """``/api`` as ``apidiscovery.k8s.io/v2`` APIGroupDiscoveryList (derived from /api/v1)."""
        return {
            "kind": "APIGroupDiscoveryList",
            "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {},
            "items": [
                {
                    "metadata": {"creationTimestamp": None},
                    "versions": [
                        {
                            "version": "v1",
                            "resources": _aggregated_resources(self._core_list),
                            "freshness": "Current",
                        }
                    ],
                }
            ],
        }

    def _derive_resource_list(self, group: str, version: str) -> dict[str, Any]:
        """Build an APIResourceList for ``group/version`` from the aggregated document."""
        resources_out: list[dict[str, Any]] = []
        for item in self._aggregated["items"]:
            if item["metadata"].get("name") != group:
                continue
            for ver in item["versions"]:
                if ver["version"] != version:
                    continue
                for res in ver.get("resources", []):
                    entry: dict[str, Any] = {
                        "name": res["resource"],
                        "singularName": res.get("singularResource", ""),
                        "namespaced": res.get("scope") == "Namespaced",
                        "kind": res["responseKind"]["kind"],
                        "verbs": list(res.get("verbs", [])),
                    }
                    if res.get("shortNames"):
                        entry["shortNames"] = list(res["shortNames"])
                    if res.get("categories"):
                        entry["categories"] = list(res["categories"])
                    resources_out.append(entry)
                    for sub in res.get("subresources", []):
                        sub_entry: dict[str, Any] = {
                            "name": f"{res['resource']}/{sub['subresource']}",
                            "singularName": "",
                            "namespaced": res.get("scope") == "Namespaced",
                            "kind": sub["responseKind"]["kind"],
                            "verbs": list(sub.get("verbs", [])),
                        }
                        if sub["responseKind"].get("group"):
                            sub_entry["group"] = sub["responseKind"]["group"]
                            sub_entry["version"] = sub["responseKind"].get("version", "")
                        resources_out.append(sub_entry)
        # A group-version advertised by /apis but absent from the aggregated document (the
        # fixtures come from different revisions) answers with an empty list rather than 404,
        # so legacy discovery clients do not report a partial failure.
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}",
            "resources": resources_out,
        }


def _aggregated_resources(resource_list: dict[str, Any]) -> list[dict[str, Any]]:
    """Convert an APIResourceList to the ``resources`` of an APIVersionDiscovery."""
    top: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for res in resource_list.get("resources", []):
        if "/" in res["name"]:
            continue
        entry: dict[str, Any] = {
            "resource": res["name"],
            "responseKind": {"group": "", "version": "v1", "kind": res["kind"]},
            "scope": "Namespaced" if res.get("namespaced") else "Cluster",
            "singularResource": res.get("singularName", ""),
            "verbs": list(res.get("verbs", [])),
        }
        if res.get("shortNames"):
            entry["shortNames"] = list(res["shortNames"])
        if res.get("categories"):
            entry["categories"] = list(res["categories"])
        top[res["name"]] = entry
        order.append(res["name"])
    for res in resource_list.get("resources", []):
        if "/" not in res["name"]:
            continue
        parent, sub = res["name"].split("/", 1)
        if parent not in top:
            continue
        top[parent].setdefault("subresources", []).append(
            {
                "subresource": sub,
                "responseKind": {
                    "group": res.get("group", ""),
                    "version": res.get("version", "v1"),
                    "kind": res["kind"],
                },
                "verbs": list(res.get("verbs", [])),
            }
        )
    return [top[name] for name in order]
