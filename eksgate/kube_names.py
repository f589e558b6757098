"""Resource names as people type them (``deploy``, ``deployments.apps``, ``pod``), resolved
against the real Kubernetes discovery documents in ``eksgate/fixtures/kubernetes/`` (the local
Kubernetes emulator serves the same files)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DISCOVERY_DIR = Path(__file__).resolve().parent / "fixtures" / "kubernetes" / "discovery"


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    resource: str
    kind: str
    namespaced: bool


@lru_cache(maxsize=1)
def _index() -> dict[str, list[ResourceType]]:
    index: dict[str, list[ResourceType]] = {}
    for path in sorted(DISCOVERY_DIR.glob("*.json")):
        document = json.loads(path.read_text())
        if document.get("kind") != "APIResourceList":
            continue
        group, _, version = document["groupVersion"].rpartition("/")
        for item in document["resources"]:
            if "/" in item["name"]:
                continue  # subresources are named with --subresource
            rtype = ResourceType(group, version, item["name"], item["kind"], item["namespaced"])
            names = {
                item["name"],
                item.get("singularName") or "",
                item["kind"].lower(),
                *item.get("shortNames", []),
            }
            for name in filter(None, names):
                index.setdefault(name, []).append(rtype)
                index.setdefault(f"{name}.{group}" if group else name, []).append(rtype)
    return index


def resolve_resource_type(text: str) -> ResourceType:
    """``deploy`` -> apps/v1 deployments; ValueError if unknown or ambiguous."""
    matches = list(dict.fromkeys(_index().get(text.lower(), [])))
    if not matches:
        # Not in the shipped discovery data (e.g. a CRD): take it as written, core group unless
        # a group follows the first dot.
        resource, _, group = text.partition(".")
        return ResourceType(group, "", resource, "", True)
    # Prefer the core and the stable groups, as kubectl's preferred versions do.
    matches.sort(key=lambda r: (r.group != "", r.group))
    return matches[0]
