"""Kubernetes ``Status`` errors, shaped like kube-apiserver's so clients parse them natively."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error that becomes a ``v1 Status`` response with the same HTTP code."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}

    def status(self) -> dict[str, Any]:
        """The ``Status`` object kube-apiserver would send for this error."""
        return failure_status(self.code, self.reason, self.message, self.details)


def failure_status(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Build a ``Status`` with ``status: Failure``."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details or {},
        "code": code,
    }


def success_status(details: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build a ``Status`` with ``status: Success`` (what DELETE returns for most kinds)."""
    status: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
    }
    if details:
        status["details"] = details
    return status


def qualified_resource(group: str, resource: str) -> str:
    """``pods`` for the core group, ``deployments.apps`` otherwise, as kube prints them."""
    return f"{resource}.{group}" if group else resource


def _details(group: str, resource: str, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": resource}
    if group:
        details["group"] = group
    return details


def not_found(group: str, resource: str, name: str) -> ApiError:
    """404 ``pods "x" not found``."""
    return ApiError(
        404,
        "NotFound",
        f'{qualified_resource(group, resource)} "{name}" not found',
        _details(group, resource, name),
    )


def already_exists(group: str, resource: str, name: str) -> ApiError:
    """409 ``pods "x" already exists``."""
    return ApiError(
        409,
        "AlreadyExists",
        f'{qualified_resource(group, resource)} "{name}" already exists',
        _details(group, resource, name),
    )


def conflict(group: str, resource: str, name: str, why: str) -> ApiError:
    """409 Conflict: optimistic-concurrency failure."""
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {qualified_resource(group, resource)} "{name}": {why}',
        _details(group, resource, name),
    )


def bad_request(message: str) -> ApiError:
    """400 BadRequest."""
    return ApiError(400, "BadRequest", message)


def method_not_allowed(message: str) -> ApiError:
    """405 MethodNotAllowed: the resource exists but does not support the verb."""
    return ApiError(405, "MethodNotAllowed", message)


def invalid(kind: str, group: str, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """422 Invalid, with one cause per (field, reason type, message) like kube's field errors."""
    qualified_kind = f"{kind}.{group}" if group else kind
    rendered = [f"{field}: {message}" for field, _, message in causes]
    if len(rendered) == 1:
        summary = rendered[0]
    else:
        summary = "[" + ", ".join(rendered) + "]"
    details: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "causes": [
            {"reason": reason, "message": message, "field": field}
            for field, reason, message in causes
        ],
    }
    if group:
        details["group"] = group
    return ApiError(422, "Invalid", f'{qualified_kind} "{name}" is invalid: {summary}', details)


def gone(message: str) -> ApiError:
    """410 Expired: e.g. a watch from a resourceVersion older than the retained history."""
    return ApiError(410, "Expired", message)
