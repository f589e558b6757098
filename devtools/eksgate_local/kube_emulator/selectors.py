"""Label and field selectors with kube-apiserver's grammar and error behaviour.

Label selectors: ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``, ``k``, ``!k``,
and the numeric ``k>n`` / ``k<n``; requirements are ANDed with commas. Field selectors:
``f=v``, ``f==v``, ``f!=v`` over a per-resource set of supported fields; any other field is a
400 ``field label not supported`` as kube answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import bad_request

Object = dict[str, Any]

_LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Requirement:
    """One label requirement: ``key <operator> values``."""

    key: str
    operator: str  # one of = != in notin exists !exists gt lt
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        """Whether ``labels`` satisfy this requirement (kube semantics for missing keys)."""
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator in ("=", "in"):
            return present and value in self.values
        if self.operator in ("!=", "notin"):
            # As in kube: a missing key satisfies != and notin.
            return not present or value not in self.values
        if self.operator == "exists":
            return present
        if self.operator == "!exists":
            return not present
        if self.operator in ("gt", "lt"):
            if not present:
                return False
            try:
                have = int(value or "")
            except ValueError:
                return False
            want = int(self.values[0])
            return have > want if self.operator == "gt" else have < want
        return False


class LabelSelector:
    """A parsed label selector; the empty selector matches everything."""

    def __init__(self, requirements: list[Requirement]) -> None:
        self.requirements = requirements

    def matches(self, labels: dict[str, str] | None) -> bool:
        """Whether an object with ``labels`` is selected."""
        labels = labels or {}
        return all(req.matches(labels) for req in self.requirements)

    @property
    def empty(self) -> bool:
        """True when the selector selects everything."""
        return not self.requirements


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside ``( … )`` value sets."""
    parts: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise bad_request(f"unable to parse requirement: unexpected ')' in {text!r}")
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    if depth != 0:
        raise bad_request(f"unable to parse requirement: unbalanced parentheses in {text!r}")
    parts.append("".join(current))
    return parts


def _check_key(key: str) -> str:
    if not key or len(key) > 316 or not _LABEL_KEY.match(key):
        raise bad_request(
            f'unable to parse requirement: values[0][{key}]: Invalid value: "{key}": '
            "name part must consist of alphanumeric characters, '-', '_' or '.'"
        )
    return key


def _check_value(value: str) -> str:
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        raise bad_request(
            f'unable to parse requirement: values[0]: Invalid value: "{value}": a valid label '
            "must be an empty string or consist of alphanumeric characters, '-', '_' or '.'"
        )
    return value


_SET_RE = re.compile(r"^\s*(?P<key>\S+?)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)\s*$")


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse ``text``; raise a 400 ApiError on syntax errors as kube-apiserver does."""
    if text is None or not text.strip():
        return LabelSelector([])
    requirements: list[Requirement] = []
    for raw in _split_top_level(text):
        part = raw.strip()
        if not part:
            raise bad_request(
                f"unable to parse requirement: found '', expected: identifier in {text!r}"
            )
        match = _SET_RE.match(part)
        if match:
            values = tuple(
                _check_value(v.strip()) for v in match.group("values").split(",") if v.strip() != ""
            )
            if not values and match.group("op") == "in":
                raise bad_request(
                    "unable to parse requirement: for 'in', 'notin' operators, values set can't be empty"
                )
            requirements.append(
                Requirement(_check_key(match.group("key")), match.group("op"), values)
            )
            continue
        if part.startswith("!"):
            requirements.append(Requirement(_check_key(part[1:].strip()), "!exists"))
            continue
        for token, op in (("==", "="), ("!=", "!="), ("=", "="), (">", "gt"), ("<", "lt")):
            if token in part:
                key, _, value = part.partition(token)
                key, value = key.strip(), value.strip()
                if op in ("gt", "lt"):
                    if not re.fullmatch(r"-?\d+", value):
                        raise bad_request(
                            f"unable to parse requirement: for 'Gt', 'Lt' operators, the value must "
                            f"be an integer: {value!r}"
                        )
                else:
                    _check_value(value)
                requirements.append(Requirement(_check_key(key), op, (value,)))
                break
        else:
            if re.search(r"\s", part):
                raise bad_request(
                    f"unable to parse requirement: found '{part}', expected: in, notin, =, ==, !=, gt, lt"
                )
            requirements.append(Requirement(_check_key(part), "exists"))
    return LabelSelector(requirements)


# ----- field selectors ----------------------------------------------------------------------


def _path(*keys: str) -> Callable[[Object], str]:
    def get(obj: Object) -> str:
        cur: Any = obj
        for key in keys:
            if not isinstance(cur, dict):
                return ""
            cur = cur.get(key)
        if cur is None:
            return ""
        if isinstance(cur, bool):
            return "true" if cur else "false"
        return str(cur)

    return get


def _pod_ips(obj: Object) -> str:
    ips = [entry.get("ip", "") for entry in (obj.get("status") or {}).get("podIPs") or []]
    return ",".join(ips) or _path("status", "podIP")(obj)


_COMMON_FIELDS: dict[str, Callable[[Object], str]] = {
    "metadata.name": _path("metadata", "name"),
    "metadata.namespace": _path("metadata", "namespace"),
}

# Per (group, resource) field labels kube-apiserver supports (GetAttrs / field label conversions).
_RESOURCE_FIELDS: dict[tuple[str, str], dict[str, Callable[[Object], str]]] = {
    ("", "pods"): {
        "spec.nodeName": _path("spec", "nodeName"),
        "spec.restartPolicy": _path("spec", "restartPolicy"),
        "spec.schedulerName": _path("spec", "schedulerName"),
        "spec.serviceAccountName": _path("spec", "serviceAccountName"),
        "spec.hostNetwork": lambda o: (
            "true" if (o.get("spec") or {}).get("hostNetwork") else "false"
        ),
        "status.phase": _path("status", "phase"),
        "status.podIP": _path("status", "podIP"),
        "status.podIPs": _pod_ips,
        "status.nominatedNodeName": _path("status", "nominatedNodeName"),
    },
    ("", "secrets"): {"type": _path("type")},
    ("", "namespaces"): {"status.phase": _path("status", "phase")},
    ("", "nodes"): {
        "spec.unschedulable": lambda o: (
            "true" if (o.get("spec") or {}).get("unschedulable") else "false"
        )
    },
    ("", "events"): {
        "involvedObject.kind": _path("involvedObject", "kind"),
        "involvedObject.namespace": _path("involvedObject", "namespace"),
        "involvedObject.name": _path("involvedObject", "name"),
        "involvedObject.uid": _path("involvedObject", "uid"),
        "involvedObject.apiVersion": _path("involvedObject", "apiVersion"),
        "involvedObject.resourceVersion": _path("involvedObject", "resourceVersion"),
        "involvedObject.fieldPath": _path("involvedObject", "fieldPath"),
        "reason": _path("reason"),
        "reportingComponent": _path("reportingComponent"),
        "source": _path("source", "component"),
        "type": _path("type"),
    },
    ("", "replicationcontrollers"): {"status.replicas": _path("status", "replicas")},
    ("apps", "replicasets"): {"status.replicas": _path("status", "replicas")},
    ("batch", "jobs"): {
        "status.successful": lambda o: str((o.get("status") or {}).get("succeeded", 0))
    },
    ("certificates.k8s.io", "certificatesigningrequests"): {
        "spec.signerName": _path("spec", "signerName")
    },
}


@dataclass(frozen=True)
class FieldRequirement:
    """One field requirement: ``field = value`` or ``field != value``."""

    field: str
    negate: bool
    value: str
    getter: Callable[[Object], str]

    def matches(self, obj: Object) -> bool:
        """Whether ``obj`` satisfies this requirement."""
        equal = self.getter(obj) == self.value
        return not equal if self.negate else equal


class FieldSelector:
    """A parsed field selector; the empty selector matches everything."""

    def __init__(self, requirements: list[FieldRequirement]) -> None:
        self.requirements = requirements

    def matches(self, obj: Object) -> bool:
        """Whether ``obj`` is selected."""
        return all(req.matches(obj) for req in self.requirements)

    def exact_name(self) -> str | None:
        """The name pinned by ``metadata.name=…``, if any (used by legacy single-object watch)."""
        for req in self.requirements:
            if req.field == "metadata.name" and not req.negate:
                return req.value
        return None


def supported_fields(group: str, resource: str) -> dict[str, Callable[[Object], str]]:
    """The field labels kube supports for ``group/resource``."""
    fields = dict(_COMMON_FIELDS)
    fields.update(_RESOURCE_FIELDS.get((group, resource), {}))
    return fields


def parse_field_selector(text: str | None, group: str, resource: str) -> FieldSelector:
    """Parse ``text`` for ``group/resource``; 400 on syntax errors and unsupported fields."""
    if text is None or not text.strip():
        return FieldSelector([])
    fields = supported_fields(group, resource)
    requirements: list[FieldRequirement] = []
    for raw in text.split(","):
        part = raw.strip()
        for token, negate in (("!=", True), ("==", False), ("=", False)):  # noqa: B007
            if token in part:
                name, _, value = part.partition(token)
                name = name.strip()
                break
        else:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        getter = fields.get(name)
        if getter is None:
            raise bad_request(f"field label not supported: {name}")
        requirements.append(FieldRequirement(name, negate, value.strip(), getter))
    return FieldSelector(requirements)
