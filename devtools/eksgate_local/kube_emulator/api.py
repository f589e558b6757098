"""The API verbs (create, get, list, update, patch, delete, deletecollection, subresources).

HTTP-agnostic: the server parses the request and calls these; each returns
``(http_status, body)`` or raises :class:`~.errors.ApiError`. Semantics follow
kube-apiserver: optimistic concurrency on ``metadata.resourceVersion``, no-op updates keep
the resourceVersion, ``dryRun=All`` runs every check and returns the would-be result
without storing it, DELETE returns the object for pods and namespaces (graceful deletion)
and a ``Status`` otherwise.
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .controllers import Controllers
from .discovery import Discovery, ResourceInfo
from .errors import (
    ApiError,
    already_exists,
    bad_request,
    conflict,
    invalid,
    method_not_allowed,
    not_found,
    success_status,
)
from .objects import (
    check_body,
    check_kind_supported,
    normalize,
    now_rfc3339,
    prepare_new,
    prepare_update,
    validate,
)
from .patch import APPLY_PATCH, apply_patch
from .selectors import FieldSelector, LabelSelector, parse_field_selector, parse_label_selector
from .store import ObjectStore, object_key

Object = dict[str, Any]

OIDC_ISSUER = "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B716D3041E"
_MODIFIED = (
    "the object has been modified; please apply your changes to the latest version and try again"
)
_SCALABLE = frozenset({("apps", "deployments"), ("apps", "replicasets"), ("apps", "statefulsets")})


@dataclass(frozen=True)
class ListOptions:
    """Query parameters of list, watch and deletecollection."""

    label_selector: LabelSelector
    field_selector: FieldSelector
    limit: int | None = None
    continue_token: str | None = None


def parse_list_options(info: ResourceInfo, query: dict[str, list[str]]) -> ListOptions:
    """Read ``labelSelector``, ``fieldSelector``, ``limit`` and ``continue``."""

    def one(name: str) -> str | None:
        values = query.get(name)
        return values[-1] if values else None

    limit_raw = one("limit")
    limit: int | None = None
    if limit_raw not in (None, ""):
        try:
            limit = int(limit_raw)
        except ValueError as exc:
            raise bad_request(f"invalid limit {limit_raw!r}") from exc
        if limit <= 0:
            limit = None  # kube treats limit<=0 as "no limit"
    return ListOptions(
        label_selector=parse_label_selector(one("labelSelector")),
        field_selector=parse_field_selector(one("fieldSelector"), info.group, info.name),
        limit=limit,
        continue_token=one("continue") or None,
    )


def _encode_continue(resource_version: int, start_key: tuple[str, str]) -> str:
    # Same shape as kube's token (base64 of {"v","rv","start"}): opaque to clients.
    start = f"{start_key[0]}/{start_key[1]}\x00" if start_key[0] else f"{start_key[1]}\x00"
    raw = json.dumps({"v": "meta.k8s.io/v1", "rv": resource_version, "start": start}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        if data.get("v") != "meta.k8s.io/v1" or not isinstance(data.get("rv"), int):
            raise ValueError("unsupported continue token version")
        start = str(data["start"]).rstrip("\x00")
    except (ValueError, binascii.Error, KeyError, TypeError, AttributeError) as exc:
        raise bad_request(f"continue key is not valid: {exc}") from exc
    ns, _, name = start.rpartition("/")
    return data["rv"], (ns, name)


def is_dry_run(values: list[str]) -> bool:
    """Interpret ``dryRun`` query values; only ``All`` is valid, as in kube."""
    for value in values:
        if value != "All":
            raise bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
    return bool(values)


def strip_type_meta(obj: Object) -> Object:
    """List items from kube-apiserver carry no kind/apiVersion; mimic that."""
    obj = dict(obj)
    obj.pop("kind", None)
    obj.pop("apiVersion", None)
    return obj


class Api:
    """All verbs over one :class:`ObjectStore`."""

    def __init__(
        self,
        discovery: Discovery,
        store: ObjectStore,
        controllers: Controllers,
        *,
        token_reviewer: Callable[[str], str | None] | None = None,
    ) -> None:
        self.discovery = discovery
        self.store = store
        self.controllers = controllers
        self._token_reviewer = token_reviewer

    # ----- reads --------------------------------------------------------------------------

    def get(self, info: ResourceInfo, namespace: str | None, name: str) -> Object:
        """GET one object (404 Status when missing)."""
        check_kind_supported(info, "get")
        obj = self.store.get(info.group_resource, namespace or "", name)
        if obj is None:
            raise not_found(info.group, info.name, name)
        return self.as_version(info, obj)

    def list(self, info: ResourceInfo, namespace: str | None, options: ListOptions) -> Object:
        """LIST with selectors and ``limit``/``continue`` pagination; full objects in items."""
        check_kind_supported(info, "list")
        with self.store.lock:
            items = self.store.list(info.group_resource, namespace)
            resource_version = self.store.resource_version
        items = [
            o
            for o in items
            if options.label_selector.matches((o.get("metadata") or {}).get("labels"))
            and options.field_selector.matches(o)
        ]
        metadata: Object = {"resourceVersion": str(resource_version)}
        if options.continue_token:
            token_rv, start = _decode_continue(options.continue_token)
            # Later pages report the first page's resourceVersion, as kube does.
            metadata["resourceVersion"] = str(token_rv)
            items = [o for o in items if object_key(o) > start]
        if options.limit is not None and len(items) > options.limit:
            page = items[: options.limit]
            metadata["continue"] = _encode_continue(
                int(metadata["resourceVersion"]), object_key(page[-1])
            )
            if options.label_selector.empty and not options.field_selector.requirements:
                metadata["remainingItemCount"] = len(items) - options.limit
            items = page
        return {
            "kind": f"{info.kind}List",
            "apiVersion": info.api_version,
            "metadata": metadata,
            "items": [self.as_version(info, o) for o in items],
        }

    @staticmethod
    def as_version(info: ResourceInfo, obj: Object) -> Object:
        """``obj`` presented as ``info``'s kind and apiVersion (kind and apiVersion first)."""
        # Objects are shared across versions of a group; present them in the requested one,
        # with kind and apiVersion first as kube-apiserver serialises them.
        rest = {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
        return {"kind": info.kind, "apiVersion": info.api_version, **rest}

    def _require_namespace(self, namespace: str | None) -> None:
        if namespace and self.store.get(("", "namespaces"), "", namespace) is None:
            raise not_found("", "namespaces", namespace)

    # ----- create -------------------------------------------------------------------------

    def create(
        self,
        info: ResourceInfo,
        namespace: str | None,
        body: Any,
        *,
        dry_run: bool,
        principal: str | None,
    ) -> tuple[int, Object]:
        """POST a new object (201), or answer a review-style create."""
        check_kind_supported(info, "create")
        review = self._review(info, namespace, body, principal)
        if review is not None:
            return 201, review
        if "get" not in info.verbs:
            raise method_not_allowed(f"the emulator does not implement create for {info.name}")
        body = check_body(info, body, namespace, None)
        with self.store.lock:
            if info.namespaced:
                self._require_namespace(namespace)
            for _ in range(5):
                obj = normalize(info, prepare_new(info, body, namespace))
                validate(info, obj)
                exists = self.store.get(
                    info.group_resource, namespace or "", obj["metadata"]["name"]
                )
                if exists is None:
                    break
                if not body["metadata"].get("generateName") or body["metadata"].get("name"):
                    raise already_exists(info.group, info.name, obj["metadata"]["name"])
            else:
                raise already_exists(info.group, info.name, obj["metadata"]["name"])
            self.controllers.before_write(info, obj)
            if dry_run:
                return 201, self.as_version(info, obj)
            stored = self.store.put(info.group_resource, obj)
            self.controllers.after_write(info, stored)
            return 201, self.as_version(info, stored)

    # ----- update and patch ---------------------------------------------------------------

    def update(
        self,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        dry_run: bool,
        subresource: str | None = None,
    ) -> Object:
        """PUT (replace) an object or its ``status``."""
        if subresource is None:
            check_kind_supported(info, "update")
        body = check_body(info, body, namespace, name)
        with self.store.lock:
            old = self._existing(info, namespace, name)
            return self._write_update(
                info, namespace, old, body, dry_run=dry_run, status_only=subresource == "status"
            )

    def patch(
        self,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        content_type: str,
        raw: bytes,
        *,
        dry_run: bool,
        subresource: str | None = None,
    ) -> Object:
        """PATCH an object or its ``status`` with a JSON, merge or strategic merge patch."""
        if subresource is None:
            check_kind_supported(info, "patch")
        patch = self._parse_patch(content_type, raw)
        with self.store.lock:
            old = self._existing(info, namespace, name)
            patched = apply_patch(content_type, self.as_version(info, copy.deepcopy(old)), patch)
            self._check_patched_identity(info, old, patched)
            return self._write_update(
                info, namespace, old, patched, dry_run=dry_run, status_only=subresource == "status"
            )

    @staticmethod
    def _parse_patch(content_type: str, raw: bytes) -> Any:
        if content_type == APPLY_PATCH:
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "the emulator does not implement server-side apply (application/apply-patch+yaml); "
                "use client-side kubectl apply",
            )
        try:
            return json.loads(raw or b"null")
        except ValueError as exc:
            raise bad_request(f"error decoding patch: {exc}") from exc

    def _check_patched_identity(self, info: ResourceInfo, old: Object, patched: Object) -> None:
        meta = patched.get("metadata")
        if not isinstance(meta, dict):
            raise bad_request("the patch removed metadata")
        for field in ("name", "namespace", "uid"):
            if (
                field in old["metadata"]
                and meta.get(field, old["metadata"][field]) != old["metadata"][field]
            ):
                raise invalid(
                    info.kind,
                    info.group,
                    old["metadata"]["name"],
                    [
                        (
                            f"metadata.{field}",
                            "FieldValueInvalid",
                            f"Invalid value: {meta.get(field)!r}: field is immutable",
                        )
                    ],
                )
        if patched.get("kind") not in (None, info.kind):
            raise bad_request(f"the patch changed kind to {patched.get('kind')!r}")

    def _existing(self, info: ResourceInfo, namespace: str | None, name: str) -> Object:
        old = self.store.get(info.group_resource, namespace or "", name)
        if old is None:
            raise not_found(info.group, info.name, name)
        return old

    def _write_update(
        self,
        info: ResourceInfo,
        namespace: str | None,
        old: Object,
        body: Object,
        *,
        dry_run: bool,
        status_only: bool,
    ) -> Object:
        name = old["metadata"]["name"]
        want_rv = (body.get("metadata") or {}).get("resourceVersion")
        if want_rv and want_rv != old["metadata"]["resourceVersion"]:
            raise conflict(info.group, info.name, name, _MODIFIED)
        want_uid = (body.get("metadata") or {}).get("uid")
        if want_uid and want_uid != old["metadata"].get("uid"):
            raise conflict(
                info.group,
                info.name,
                name,
                f"Precondition failed: UID in precondition: {want_uid}, UID in object meta: {old['metadata'].get('uid')}",
            )
        new = prepare_update(info, old, body, status_only=status_only)
        if info.namespaced:
            new["metadata"]["namespace"] = namespace
        new = normalize(info, new)
        validate(info, new, old)
        if not status_only:
            self.controllers.before_write(info, new)
        new["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        if new == old or dry_run:
            # A no-op update keeps the resourceVersion and emits no event, as in kube.
            return self.as_version(info, new)
        stored = self.store.put(info.group_resource, new)
        self.controllers.after_write(info, stored)
        return self.as_version(info, stored)

    # ----- scale subresource --------------------------------------------------------------

    def _scale_of(self, obj: Object) -> Object:
        meta = obj["metadata"]
        selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in meta
            },
            "spec": {"replicas": int((obj.get("spec") or {}).get("replicas", 1))},
            "status": {
                "replicas": int((obj.get("status") or {}).get("replicas", 0)),
                "selector": ",".join(f"{k}={v}" for k, v in selector.items()),
            },
        }

    def scale(
        self,
        method: str,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        *,
        content_type: str = "",
        raw: bytes = b"",
        dry_run: bool = False,
    ) -> Object:
        """GET, PUT or PATCH ``…/scale`` (autoscaling/v1 Scale) of a scalable workload."""
        if info.group_resource not in _SCALABLE:
            raise not_found(info.group, f"{info.name}/scale", name)
        with self.store.lock:
            old = self._existing(info, namespace, name)
            current = self._scale_of(old)
            if method == "GET":
                return current
            if method == "PUT":
                try:
                    wanted = json.loads(raw or b"null")
                except ValueError as exc:
                    raise bad_request(f"error decoding body: {exc}") from exc
                if not isinstance(wanted, dict):
                    raise bad_request("the body of the request was not a Scale object")
            else:
                wanted = apply_patch(content_type, current, self._parse_patch(content_type, raw))
            replicas = (wanted.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise invalid(
                    "Scale",
                    "autoscaling",
                    name,
                    [
                        (
                            "spec.replicas",
                            "FieldValueInvalid",
                            f"Invalid value: {replicas!r}: must be greater than or equal to 0",
                        )
                    ],
                )
            want_rv = (wanted.get("metadata") or {}).get("resourceVersion")
            if want_rv and want_rv != old["metadata"]["resourceVersion"]:
                raise conflict(info.group, info.name, name, _MODIFIED)
            body = copy.deepcopy(old)
            body["spec"]["replicas"] = replicas
            updated = self._write_update(
                info, namespace, old, body, dry_run=dry_run, status_only=False
            )
            return self._scale_of(updated)

    # ----- delete -------------------------------------------------------------------------

    @staticmethod
    def _propagation(options: Object) -> str:
        policy = options.get("propagationPolicy")
        if policy is None:
            return "Orphan" if options.get("orphanDependents") else "Background"
        if policy not in ("Orphan", "Background", "Foreground"):
            raise bad_request(f'propagationPolicy: Unsupported value: "{policy}"')
        return policy

    def delete(
        self,
        info: ResourceInfo,
        namespace: str | None,
        name: str,
        options: Object,
        *,
        dry_run: bool,
    ) -> Object:
        """DELETE one object; pods and namespaces come back as objects, others as Status."""
        check_kind_supported(info, "delete")
        propagation = self._propagation(options)
        with self.store.lock:
            obj = self._existing(info, namespace, name)
            pre = options.get("preconditions") or {}
            if pre.get("uid") and pre["uid"] != obj["metadata"].get("uid"):
                raise conflict(
                    info.group,
                    info.name,
                    name,
                    f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: {obj['metadata'].get('uid')}",
                )
            if (
                pre.get("resourceVersion")
                and pre["resourceVersion"] != obj["metadata"]["resourceVersion"]
            ):
                raise conflict(
                    info.group,
                    info.name,
                    name,
                    f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                    f"ResourceVersion in object meta: {obj['metadata']['resourceVersion']}",
                )
            result = self._deletion_result(info, obj, options)
            if not dry_run:
                self.controllers.delete_cascade(info, obj, propagation=propagation)
            return result

    def _deletion_result(self, info: ResourceInfo, obj: Object, options: Object) -> Object:
        # Kinds with graceful deletion return the object marked for deletion; removal is
        # then immediate here (no kubelet to wait for).
        if info.group_resource == ("", "pods"):
            grace = options.get("gracePeriodSeconds")
            if grace is None:
                grace = (obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
            marked = copy.deepcopy(obj)
            marked["metadata"]["deletionTimestamp"] = (
                datetime.now(UTC) + timedelta(seconds=int(grace))
            ).strftime("%Y-%m-%dT%H:%M:%SZ")
            marked["metadata"]["deletionGracePeriodSeconds"] = int(grace)
            return self.as_version(info, marked)
        if info.group_resource == ("", "namespaces"):
            marked = copy.deepcopy(obj)
            marked["metadata"]["deletionTimestamp"] = now_rfc3339()
            marked.setdefault("status", {})["phase"] = "Terminating"
            return self.as_version(info, marked)
        details: Object = {
            "name": obj["metadata"]["name"],
            "kind": info.name,
            "uid": obj["metadata"].get("uid"),
        }
        if info.group:
            details["group"] = info.group
        return success_status(details)

    def delete_collection(
        self,
        info: ResourceInfo,
        namespace: str | None,
        list_options: ListOptions,
        options: Object,
        *,
        dry_run: bool,
    ) -> Object:
        """DELETE every matching object; returns the list of what was deleted, as kube does."""
        check_kind_supported(info, "deletecollection")
        propagation = self._propagation(options)
        with self.store.lock:
            selected = self.list(
                info,
                namespace,
                ListOptions(list_options.label_selector, list_options.field_selector),
            )
            if not dry_run:
                for obj in selected["items"]:
                    self.controllers.delete_cascade(info, obj, propagation=propagation)
                selected["metadata"]["resourceVersion"] = str(self.store.resource_version)
        return selected

    # ----- create-only subresources and reviews -------------------------------------------

    def token_request(self, namespace: str, name: str, body: Any, *, dry_run: bool) -> Object:
        """``serviceaccounts/{name}/token``: an ``authentication.k8s.io/v1`` TokenRequest."""
        with self.store.lock:
            sa = self.store.get(("", "serviceaccounts"), namespace, name)
        if sa is None:
            raise not_found("", "serviceaccounts", name)
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise bad_request("the body of the request was not a TokenRequest object")
        spec = dict(body.get("spec") or {})
        expiration = spec.get("expirationSeconds") or 3600
        if not isinstance(expiration, int) or expiration < 600:
            raise invalid(
                "TokenRequest",
                "authentication.k8s.io",
                name,
                [
                    (
                        "spec.expirationSeconds",
                        "FieldValueInvalid",
                        "Invalid value: may not specify a duration less than 10 minutes",
                    )
                ],
            )
        expiration = min(expiration, 48 * 3600)
        audiences = spec.get("audiences") or ["https://kubernetes.default.svc"]
        now = datetime.now(UTC)
        expires = now + timedelta(seconds=expiration)
        token = _fake_service_account_jwt(
            namespace, name, sa["metadata"].get("uid", ""), audiences, now, expires
        )
        return {
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": namespace, "creationTimestamp": None},
            "spec": {
                "audiences": audiences,
                "expirationSeconds": expiration,
                "boundObjectRef": spec.get("boundObjectRef"),
            },
            "status": {
                # A dry-run TokenRequest still answers but with no usable token.
                "token": "" if dry_run else token,
                "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        }

    def evict(self, namespace: str, name: str, body: Any, *, dry_run: bool) -> Object:
        """``pods/{name}/eviction``: delete the pod (no disruption budgets in the emulator)."""
        pod_info = self.discovery.resource("", "v1", "pods")
        assert pod_info is not None
        options = (body or {}).get("deleteOptions") or {}
        self.delete(pod_info, namespace, name, options, dry_run=dry_run)
        return success_status()

    def _review(
        self, info: ResourceInfo, namespace: str | None, body: Any, principal: str | None
    ) -> Object | None:
        key = info.group_resource
        if key[0] not in ("authentication.k8s.io", "authorization.k8s.io"):
            return None
        body = body if isinstance(body, dict) else {}
        result: Object = {
            "kind": info.kind,
            "apiVersion": info.api_version,
            "metadata": {"creationTimestamp": None},
        }
        if namespace:
            result["metadata"]["namespace"] = namespace
        if "spec" in body:
            result["spec"] = body["spec"]
        if key == ("authentication.k8s.io", "selfsubjectreviews"):
            result["status"] = {"userInfo": _user_info(principal)}
        elif key == ("authentication.k8s.io", "tokenreviews"):
            token = (body.get("spec") or {}).get("token") or ""
            who = self._token_reviewer(token) if (self._token_reviewer and token) else None
            result["status"] = (
                {
                    "authenticated": True,
                    "user": _user_info(who),
                    "audiences": (body.get("spec") or {}).get("audiences") or [],
                }
                if who
                else {"authenticated": False, "error": "invalid bearer token"}
            )
        elif key == ("authorization.k8s.io", "selfsubjectrulesreviews"):
            result["status"] = {
                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                "incomplete": False,
            }
        else:
            # The emulator has no authorizer: every authenticated caller may do everything.
            result["status"] = {
                "allowed": True,
                "reason": "the eksgate Kubernetes emulator performs no authorization",
            }
        return result


def _user_info(principal: str | None) -> Object:
    info: Object = {"username": principal or "", "groups": ["system:authenticated"]}
    if principal and principal.startswith("arn:"):
        info["extra"] = {"arn": [principal]}
    return info


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _fake_service_account_jwt(
    namespace: str,
    name: str,
    sa_uid: str,
    audiences: list[str],
    issued: datetime,
    expires: datetime,
) -> str:
    """A JWT-shaped service-account token. The signature is random bytes: not verifiable."""
    header = {"alg": "RS256", "kid": "eksgate-emulator"}
    claims = {
        "aud": audiences,
        "exp": int(expires.timestamp()),
        "iat": int(issued.timestamp()),
        "nbf": int(issued.timestamp()),
        "iss": OIDC_ISSUER,
        "jti": str(uuid.uuid4()),
        "kubernetes.io": {
            "namespace": namespace,
            "serviceaccount": {"name": name, "uid": sa_uid},
        },
        "sub": f"system:serviceaccount:{namespace}:{name}",
    }
    return ".".join(
        [
            _b64url(json.dumps(header, separators=(",", ":")).encode()),
            _b64url(json.dumps(claims, separators=(",", ":")).encode()),
            _b64url(secrets.token_bytes(256)),
        ]
    )
