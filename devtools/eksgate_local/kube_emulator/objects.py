"""Per-kind object rules: metadata defaults, defaulting, validation and write normalisation.

These mirror what kube-apiserver's registry strategies do for the built-in kinds closely
enough for clients to behave as against a real cluster (``kubectl apply`` diffs, Table
output, ``kubectl rollout status``), without aiming at full fidelity.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import re
import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from .discovery import ResourceInfo
from .errors import ApiError, bad_request, invalid

Object = dict[str, Any]

# kube's utilrand alphabet: no vowels (avoids words) and no confusable characters.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")

# Groups whose objects carry metadata.generation (their strategies bump it on spec changes).
_GENERATION_GROUPS = frozenset({"apps", "batch", "policy", "autoscaling", "networking.k8s.io"})
# Kinds with a pod template that kube validates (selector vs labels, containers).
_WORKLOADS = frozenset(
    {
        ("apps", "deployments"),
        ("apps", "replicasets"),
        ("apps", "statefulsets"),
        ("apps", "daemonsets"),
    }
)


def now_rfc3339() -> str:
    """The current time in the second-precision RFC 3339 form kube uses in metadata."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(value: str | None) -> datetime | None:
    """Parse a kube timestamp; None when absent or malformed."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def random_suffix(length: int = 5) -> str:
    """Random name suffix as ``generateName`` and ReplicaSet pods use."""
    return "".join(secrets.choice(_NAME_ALPHABET) for _ in range(length))


def stable_hash(value: Any, length: int = 10) -> str:
    """Deterministic short hash in kube's safe alphabet (pod-template-hash look-alike).

    Zero values (None, "", 0, False, empty maps and lists) are ignored, as Go's ``omitempty``
    makes them indistinguishable from absent fields: a template round-tripped through
    kubectl's types (``kubectl rollout undo``) hashes like the stored one.
    """
    digest = hashlib.sha256(repr(_canonical(value)).encode()).digest()
    return "".join(_NAME_ALPHABET[b % len(_NAME_ALPHABET)] for b in digest[:length])


def _is_zero(value: Any) -> bool:
    return (
        value is None
        or value is False
        or value == 0
        and not isinstance(value, bool)
        or value in ("", {}, [], ())
    )


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        items = ((k, _canonical(v)) for k, v in value.items())
        return tuple(sorted((k, v) for k, v in items if not _is_zero(v)))
    if isinstance(value, list):
        return tuple(_canonical(v) for v in value)
    return value


def prune_nulls(value: Any) -> Any:
    """Drop null map values recursively, as decoding into kube's Go types does."""
    if isinstance(value, dict):
        return {k: prune_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [prune_nulls(v) for v in value]
    return value


def tracks_generation(info: ResourceInfo) -> bool:
    """Whether objects of ``info`` carry ``metadata.generation``."""
    return info.group in _GENERATION_GROUPS


def has_status_subresource(info: ResourceInfo) -> bool:
    """Whether main-resource writes must leave ``status`` alone (kube's status strategy)."""
    return "status" in info.subresources


# ----- request body checks ------------------------------------------------------------------


def check_body(info: ResourceInfo, body: Any, namespace: str | None, name: str | None) -> Object:
    """Validate the envelope of a create/update body against the URL, as kube's handlers do."""
    if not isinstance(body, dict):
        raise bad_request(f"the body of the request was not a {info.kind} object")
    kind = body.get("kind")
    if kind and kind != info.kind:
        raise bad_request(
            f'{kind} in version "{info.version}" cannot be handled as a {info.kind}: '
            f'no kind "{kind}" is registered for the resource {info.name}'
        )
    api_version = body.get("apiVersion")
    if api_version and api_version != info.api_version:
        raise bad_request(
            f"the API version in the data ({api_version}) does not match the expected API "
            f"version ({info.api_version})"
        )
    metadata = body.get("metadata")
    if metadata is None:
        body["metadata"] = metadata = {}
    if not isinstance(metadata, dict):
        raise bad_request("metadata must be an object")
    if info.namespaced:
        body_ns = metadata.get("namespace")
        if body_ns and namespace and body_ns != namespace:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
    if name is not None and metadata.get("name") and metadata["name"] != name:
        raise bad_request(
            f"the name of the object ({metadata['name']}) does not match the name on the URL ({name})"
        )
    return body


# ----- defaults and normalisation ------------------------------------------------------------


def prepare_new(info: ResourceInfo, obj: Object, namespace: str | None) -> Object:
    """Fill server-owned metadata of a new object (everything except resourceVersion)."""
    obj = copy.deepcopy(obj)
    obj["kind"] = info.kind
    obj["apiVersion"] = info.api_version
    meta = obj.setdefault("metadata", {})
    if not meta.get("name") and meta.get("generateName"):
        meta["name"] = meta["generateName"] + random_suffix()
    if info.namespaced:
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    meta["uid"] = str(uuid.uuid4())
    meta["creationTimestamp"] = now_rfc3339()
    meta.pop("resourceVersion", None)
    meta.pop("deletionTimestamp", None)
    meta.pop("deletionGracePeriodSeconds", None)
    meta.pop("managedFields", None)
    if tracks_generation(info):
        meta["generation"] = 1
    else:
        meta.pop("generation", None)
    return obj


def prepare_update(info: ResourceInfo, old: Object, new: Object, *, status_only: bool) -> Object:
    """Carry server-owned fields from ``old`` into ``new`` as kube's update strategies do."""
    new = copy.deepcopy(new)
    new["kind"] = info.kind
    new["apiVersion"] = info.api_version
    meta = new.setdefault("metadata", {})
    old_meta = old["metadata"]
    for key in ("uid", "creationTimestamp", "name", "namespace", "deletionTimestamp"):
        if key in old_meta:
            meta[key] = old_meta[key]
        else:
            meta.pop(key, None)
    meta.pop("managedFields", None)
    if status_only:
        # The status subresource only ever changes status.
        result = copy.deepcopy(old)
        if "status" in new:
            result["status"] = new["status"]
        else:
            result.pop("status", None)
        return result
    if has_status_subresource(info):
        if "status" in old:
            new["status"] = copy.deepcopy(old["status"])
        else:
            new.pop("status", None)
    if tracks_generation(info):
        generation = int(old_meta.get("generation", 1))
        if _without(new, "metadata", "status") != _without(old, "metadata", "status"):
            generation += 1
        meta["generation"] = generation
    else:
        meta.pop("generation", None)
    return new


def _without(obj: Object, *keys: str) -> Object:
    return {k: v for k, v in obj.items() if k not in keys}


def normalize(info: ResourceInfo, obj: Object) -> Object:
    """Kind-specific write-time conversion and defaulting (returns the normalised object)."""
    obj = prune_nulls(obj)
    key = info.group_resource
    if key == ("", "secrets"):
        _normalize_secret(obj)
    elif key == ("", "namespaces"):
        meta = obj["metadata"]
        meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta.get("name", "")
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
    elif key == ("", "configmaps"):
        for field in ("data", "binaryData"):
            if obj.get(field) is None:
                obj.pop(field, None)
    elif key == ("", "services"):
        _default_service(obj)
    elif key == ("", "pods"):
        _default_pod_spec(obj.setdefault("spec", {}))
    elif key in _WORKLOADS:
        spec = obj.setdefault("spec", {})
        if key != ("apps", "daemonsets"):
            spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        if key == ("apps", "deployments"):
            spec.setdefault("progressDeadlineSeconds", 600)
            spec.setdefault(
                "strategy",
                {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"},
                },
            )
        template_spec = (spec.get("template") or {}).get("spec")
        if isinstance(template_spec, dict):
            _default_pod_spec(template_spec)
    return obj


def _normalize_secret(obj: Object) -> None:
    obj.setdefault("type", "Opaque")
    data = obj.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise bad_request(
            'Secret in version "v1" cannot be handled as a Secret: data must be a map'
        )
    for key, value in data.items():
        if not isinstance(value, str):
            raise bad_request(
                f'Secret in version "v1" cannot be handled as a Secret: data[{key}] must be a base64 string'
            )
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise bad_request(
                f'Secret in version "v1" cannot be handled as a Secret: illegal base64 data: {exc}'
            ) from exc
    # As kube: stringData is write-only; its entries win over data and it is never stored.
    string_data = obj.pop("stringData", None) or {}
    if not isinstance(string_data, dict):
        raise bad_request(
            'Secret in version "v1" cannot be handled as a Secret: stringData must be a map'
        )
    for key, value in string_data.items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    if data:
        obj["data"] = data
    else:
        obj.pop("data", None)


def _default_service(obj: Object) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec.get("clusterIP") != "None":
        if not spec.get("clusterIP"):
            digest = hashlib.sha256(obj["metadata"].get("uid", "").encode()).digest()
            spec["clusterIP"] = f"10.100.{digest[0]}.{max(digest[1], 2)}"
        spec["clusterIPs"] = [spec["clusterIP"]]
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    spec.setdefault("internalTrafficPolicy", "Cluster")
    for port in spec.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
            if "port" in port:
                port.setdefault("targetPort", port["port"])
    obj.setdefault("status", {"loadBalancer": {}})


def _default_pod_spec(spec: Object) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        if not isinstance(container, dict):
            continue
        image = str(container.get("image", ""))
        tag = image.rsplit("/", 1)[-1]
        latest = ":" not in tag or tag.endswith(":latest")
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})


# ----- validation ----------------------------------------------------------------------------


def validate(info: ResourceInfo, obj: Object, old: Object | None = None) -> None:
    """Raise a 422 Invalid ApiError for the checks kube would fail on ``obj``."""
    causes: list[tuple[str, str, str]] = []
    meta = obj.get("metadata") or {}
    name = meta.get("name") or ""
    if not name:
        causes.append(
            (
                "metadata.name",
                "FieldValueRequired",
                "Required value: name or generateName is required",
            )
        )
    else:
        causes.extend(_name_causes(info, name))
    for field in ("labels", "annotations"):
        value = meta.get(field)
        if value is not None and (
            not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values())
        ):
            causes.append(
                (
                    f"metadata.{field}",
                    "FieldValueInvalid",
                    "Invalid value: must be a map of strings",
                )
            )
    key = info.group_resource
    if key in (("", "configmaps"), ("", "secrets")):
        for field in ("data", "binaryData", "stringData"):
            for data_key in obj.get(field) or {}:
                if not _CONFIG_KEY.match(data_key) or len(data_key) > 253:
                    causes.append(
                        (
                            f"{field}[{data_key}]",
                            "FieldValueInvalid",
                            f'Invalid value: "{data_key}": a valid config key must consist of '
                            "alphanumeric characters, '-', '_' or '.'",
                        )
                    )
    if key == ("", "pods"):
        causes.extend(_pod_spec_causes(obj.get("spec") or {}, "spec"))
    if key in _WORKLOADS or key == ("batch", "jobs"):
        causes.extend(_workload_causes(info, obj, old))
    if causes:
        raise invalid(info.kind, info.group, name, causes)


def _name_causes(info: ResourceInfo, name: str) -> list[tuple[str, str, str]]:
    if info.group == "rbac.authorization.k8s.io":
        # RBAC names are path segments ("system:controller:foo" is valid).
        if name in (".", "..") or "/" in name or "%" in name:
            return [
                (
                    "metadata.name",
                    "FieldValueInvalid",
                    f"Invalid value: \"{name}\": may not contain '/' or '%'",
                )
            ]
        return []
    if info.group_resource == ("", "services"):
        if len(name) > 63 or not _DNS1035_LABEL.match(name):
            return [
                (
                    "metadata.name",
                    "FieldValueInvalid",
                    f'Invalid value: "{name}": a DNS-1035 label must consist of lower case alphanumeric '
                    "characters or '-', start with an alphabetic character, and end with an alphanumeric character",
                )
            ]
        return []
    if info.group_resource == ("", "namespaces"):
        if len(name) > 63 or not _DNS1123_LABEL.match(name):
            return [
                (
                    "metadata.name",
                    "FieldValueInvalid",
                    f'Invalid value: "{name}": a lowercase RFC 1123 label must consist of lower case '
                    "alphanumeric characters or '-', and must start and end with an alphanumeric character",
                )
            ]
        return []
    if len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name):
        return [
            (
                "metadata.name",
                "FieldValueInvalid",
                f'Invalid value: "{name}": a lowercase RFC 1123 subdomain must consist of lower case '
                "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
            )
        ]
    return []


def _pod_spec_causes(spec: Object, path: str) -> list[tuple[str, str, str]]:
    causes: list[tuple[str, str, str]] = []
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        return [(f"{path}.containers", "FieldValueRequired", "Required value")]
    seen: set[str] = set()
    for i, container in enumerate(containers):
        if not isinstance(container, dict):
            causes.append(
                (f"{path}.containers[{i}]", "FieldValueInvalid", "Invalid value: must be an object")
            )
            continue
        cname = container.get("name")
        if not cname:
            causes.append((f"{path}.containers[{i}].name", "FieldValueRequired", "Required value"))
        elif cname in seen:
            causes.append(
                (
                    f"{path}.containers[{i}].name",
                    "FieldValueDuplicate",
                    f'Duplicate value: "{cname}"',
                )
            )
        else:
            seen.add(cname)
        if not container.get("image"):
            causes.append((f"{path}.containers[{i}].image", "FieldValueRequired", "Required value"))
    return causes


def selector_matches_labels(selector: Object, labels: dict[str, str]) -> bool:
    """Whether a LabelSelector object (matchLabels/matchExpressions) selects ``labels``."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if op == "In" and not (present and labels[key] in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def _workload_causes(
    info: ResourceInfo, obj: Object, old: Object | None
) -> list[tuple[str, str, str]]:
    spec = obj.get("spec") or {}
    template = spec.get("template") or {}
    causes = _pod_spec_causes(template.get("spec") or {}, "spec.template.spec")
    if info.group_resource == ("batch", "jobs"):
        return causes
    selector = spec.get("selector")
    if not isinstance(selector, dict) or not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        causes.append(("spec.selector", "FieldValueRequired", "Required value"))
        return causes
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not selector_matches_labels(selector, labels):
        causes.append(
            (
                "spec.template.metadata.labels",
                "FieldValueInvalid",
                f"Invalid value: {labels!r}: `selector` does not match template `labels`",
            )
        )
    if old is not None and (old.get("spec") or {}).get("selector") != selector:
        causes.append(
            (
                "spec.selector",
                "FieldValueInvalid",
                f"Invalid value: {selector!r}: field is immutable",
            )
        )
    replicas = spec.get("replicas")
    if replicas is not None and (not isinstance(replicas, int) or replicas < 0):
        causes.append(
            (
                "spec.replicas",
                "FieldValueInvalid",
                f"Invalid value: {replicas!r}: must be greater than or equal to 0",
            )
        )
    return causes


def check_kind_supported(info: ResourceInfo, verb: str) -> None:
    """405 when discovery says ``info`` does not support ``verb``."""
    if verb not in info.verbs:
        raise ApiError(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
            {"kind": info.name, **({"group": info.group} if info.group else {})},
        )
