#!/usr/bin/env python3
"""Generate the JSON schema of an ``audit.k8s.io/v1`` Event from Kubernetes' own Go types.

Kubernetes publishes no OpenAPI document for audit.k8s.io (kube-apiserver does not serve it),
so the schema is derived from the Go struct definitions themselves, read from git clones of
the published staging repositories:

    k8s.io/apiserver     pkg/apis/audit/v1/types.go     Event, ObjectReference, Level, Stage
    k8s.io/api           authentication/v1/types.go     UserInfo, ExtraValue
    k8s.io/apimachinery  pkg/apis/meta/v1/types.go      TypeMeta, ListMeta, Status, ...

The mapping is encoding/json's: a field's name is its json tag, an embedded struct with an
inline (or empty) tag contributes its fields, ``*T`` is ``T``, ``[]T`` an array, ``map[string]T``
an object; ``metav1.Time``/``MicroTime`` marshal as RFC 3339 strings and ``runtime.Unknown`` as
the raw JSON it holds. A field is required unless its tag says omitempty or its comment says
``+optional`` (the marker Kubernetes' OpenAPI generator reads). Named string types of the audit
package get their declared constants as an enum. Structs do not allow unknown properties, so a
misspelt field fails validation.

Usage:
    scripts/gen_k8s_audit_schema.py APISERVER_GIT API_GIT APIMACHINERY_GIT [--ref REF] > out.json
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field

SOURCES = {
    "audit": ("apiserver", "pkg/apis/audit/v1/types.go"),
    "authnv1": ("api", "authentication/v1/types.go"),
    "metav1": ("apimachinery", "pkg/apis/meta/v1/types.go"),
}
# Types whose JSON form comes from a custom marshaller, not their struct fields.
SPECIAL = {
    "metav1.Time": {"type": "string", "format": "date-time"},
    "metav1.MicroTime": {"type": "string", "format": "date-time"},
    "runtime.Unknown": {},  # the raw JSON object it carries
    "types.UID": {"type": "string"},
}
SCALARS = {
    "string": {"type": "string"},
    "bool": {"type": "boolean"},
    "int32": {"type": "integer", "format": "int32"},
    "int64": {"type": "integer", "format": "int64"},
}
_STRUCT = re.compile(r"^type (\w+) struct \{\n(.*?)^\}", re.DOTALL | re.MULTILINE)
_NAMED = re.compile(r"^type (\w+) ([\w\[\]\.]+)\s*$", re.MULTILINE)
_CONST = re.compile(r"^\s*\w+\s+(\w+)\s*=\s*\"([^\"]*)\"", re.MULTILINE)
_FIELD = re.compile(r"^\s*(?:(\w+)\s+)?([^\s`]+)\s+`([^`]*)`")


@dataclass
class GoField:
    name: str | None  # None when embedded
    type: str
    json_name: str
    omitempty: bool
    optional: bool


@dataclass
class Package:
    alias: str
    structs: dict[str, list[GoField]] = field(default_factory=dict)
    named: dict[str, str] = field(default_factory=dict)
    enums: dict[str, list[str]] = field(default_factory=dict)


def parse(alias: str, source: str) -> Package:
    package = Package(alias)
    for name, body in _STRUCT.findall(source):
        package.structs[name] = _fields(body)
    for name, underlying in _NAMED.findall(source):
        package.named[name] = underlying
    for type_name, value in _CONST.findall(source):
        package.enums.setdefault(type_name, []).append(value)
    return package


def _fields(body: str) -> list[GoField]:
    fields, optional = [], False
    for line in body.splitlines():
        stripped = line.strip()
        if stripped.startswith("//"):
            optional = optional or stripped == "// +optional"
            continue
        match = _FIELD.match(line)
        if not match:
            if not stripped:
                continue
            optional = False
            continue
        name, go_type, tag = match.groups()
        json_tag = re.search(r'json:"([^"]*)"', tag)
        parts = (json_tag.group(1) if json_tag else "").split(",")
        fields.append(GoField(name, go_type, parts[0], "omitempty" in parts[1:], optional))
        optional = False
    return fields


class SchemaBuilder:
    def __init__(self, packages: dict[str, Package]) -> None:
        self.packages = packages
        self.definitions: dict[str, dict] = {}

    def ref(self, go_type: str, alias: str) -> dict:
        go_type = go_type.lstrip("*")
        if go_type.startswith("[]"):
            return {"type": "array", "items": self.ref(go_type[2:], alias)}
        if go_type.startswith("map[string]"):
            return {"type": "object", "additionalProperties": self.ref(go_type[11:], alias)}
        if go_type in SCALARS:
            return dict(SCALARS[go_type])
        qualified = go_type if "." in go_type else f"{alias}.{go_type}"
        if qualified in SPECIAL:
            return dict(SPECIAL[qualified])
        owner, name = qualified.split(".", 1)
        package = self.packages[owner]
        if name in package.named:
            schema = self.ref(package.named[name], owner)
            if owner == "audit" and name in package.enums:
                schema["enum"] = package.enums[name]
            return schema
        if name not in package.structs:
            raise SystemExit(f"gen_k8s_audit_schema: no definition of {qualified}")
        key = f"{owner}.{name}"
        if key not in self.definitions:
            self.definitions[key] = {}  # placeholder: recursive types refer to it
            self.definitions[key] = self.struct(owner, name)
        return {"$ref": f"#/definitions/{key}"}

    def struct(self, alias: str, name: str) -> dict:
        properties: dict[str, dict] = {}
        required: list[str] = []
        self._collect(alias, name, properties, required)
        schema: dict = {"type": "object", "properties": properties, "additionalProperties": False}
        if required:
            schema["required"] = required
        return schema

    def _collect(self, alias: str, name: str, properties: dict, required: list) -> None:
        for go_field in self.packages[alias].structs[name]:
            embedded = go_field.name is None
            if embedded and go_field.json_name == "":
                owner, inner = (
                    go_field.type.split(".", 1) if "." in go_field.type else (alias, go_field.type)
                )
                self._collect(owner, inner, properties, required)
                continue
            if go_field.json_name == "-":
                continue
            properties[go_field.json_name] = self.ref(go_field.type, alias)
            if not (go_field.omitempty or go_field.optional):
                required.append(go_field.json_name)


def git_show(repository: str, ref: str, path: str) -> tuple[str, str]:
    commit = subprocess.run(
        ["git", "-C", repository, "rev-parse", ref], check=True, capture_output=True, text=True
    ).stdout.strip()
    text = subprocess.run(
        ["git", "-C", repository, "show", f"{commit}:{path}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return commit, text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("apiserver_git")
    parser.add_argument("api_git")
    parser.add_argument("apimachinery_git")
    parser.add_argument("--ref", default="HEAD")
    args = parser.parse_args()
    repositories = {
        "apiserver": args.apiserver_git,
        "api": args.api_git,
        "apimachinery": args.apimachinery_git,
    }
    packages, provenance = {}, []
    for alias, (repository, path) in SOURCES.items():
        commit, text = git_show(repositories[repository], args.ref, path)
        packages[alias] = parse(alias, text)
        provenance.append(f"k8s.io/{repository}@{args.ref} ({commit}):{path}")
    builder = SchemaBuilder(packages)
    root = builder.ref("Event", "audit")
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$comment": "Generated by scripts/gen_k8s_audit_schema.py from " + ", ".join(provenance),
        "title": "audit.k8s.io/v1 Event",
        **root,
        "definitions": dict(sorted(builder.definitions.items())),
    }
    json.dump(schema, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
