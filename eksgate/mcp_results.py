"""What ``eksgate mcp``'s tools return: structured outcomes an agent can act on. Pure.

A refusal is not an error string: an approval that is pending carries its id, who was asked,
when it expires and how to wait; a policy denial carries the policy, rule and reason, read
from the Kubernetes ``Status`` the gateway answered with (``details.causes``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def status_causes(status: Any) -> dict[str, str]:
    """A Kubernetes Status's ``details.causes`` as ``{field: message}``."""
    if not isinstance(status, Mapping):
        return {}
    details = status.get("details")
    causes = details.get("causes") if isinstance(details, Mapping) else None
    return {
        str(c.get("field")): str(c.get("message", ""))
        for c in causes or []
        if isinstance(c, Mapping) and c.get("field")
    }


def status_message(status: Any, fallback: str) -> str:
    if isinstance(status, Mapping) and isinstance(status.get("message"), str):
        return status["message"]
    return fallback


def refusal(http_status: int, status: Any, text: str = "") -> dict[str, Any]:
    """The outcome of a request the gateway (or the cluster) did not carry out."""
    causes = status_causes(status)
    message = status_message(status, text[:2000] or f"HTTP {http_status}")
    if http_status == 403 and causes.get("approval_id"):
        state = causes.get("status", "pending")
        if state == "denied":
            return {
                "outcome": "approval_denied",
                "approval_id": causes["approval_id"],
                "message": message,
            }
        return {
            "outcome": "approval_required",
            "approval_id": causes["approval_id"],
            "approval_status": state,
            "message": message,
            "how_to_wait": (
                f"call approval_wait with approval_id={causes['approval_id']!r}: it returns when "
                "a human decides and, once approved, sends this same request (exactly once). "
                "Or call approval_status to look without waiting."
            ),
        }
    if http_status == 403 and causes.get("rule"):
        return {
            "outcome": "denied",
            "policy": causes.get("policy", ""),
            "rule": causes["rule"],
            "reason": message,
        }
    outcome = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 409: "conflict"}.get(
        http_status, "error"
    )
    return {
        "outcome": outcome,
        "http_status": http_status,
        "message": message,
        **({"details": causes} if causes else {}),
    }


def with_approval(result: dict[str, Any], approval: Mapping[str, Any] | None) -> dict[str, Any]:
    """``result`` with who was asked and until when, from ``GET /v1/approvals/{id}``."""
    if not approval or result.get("outcome") != "approval_required":
        return result
    return {
        **result,
        "approvers": list(approval.get("approvers") or []),
        "min_approvers": approval.get("min_approvers"),
        "expires_at": approval.get("expires_at"),
        "policy": approval.get("policy"),
        "rule": approval.get("rule"),
        "notified": approval.get("notified"),
        "diff": approval.get("diff"),
    }


def _conditions(status: Mapping[str, Any]) -> list[str]:
    return [
        f"{c.get('type')}={c.get('status')}" + (f" ({c.get('reason')})" if c.get("reason") else "")
        for c in status.get("conditions") or []
        if isinstance(c, Mapping)
    ]


def _containers(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    pod_spec = spec.get("template", {}).get("spec", spec) if isinstance(spec, Mapping) else {}
    return [
        {"name": c.get("name"), "image": c.get("image")}
        for c in (pod_spec or {}).get("containers") or []
        if isinstance(c, Mapping)
    ]


def describe(obj: Mapping[str, Any], events: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """A ``kubectl describe``-like summary: identity, state, containers, recent events."""
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    summary: dict[str, Any] = {
        "kind": obj.get("kind"),
        "name": metadata.get("name"),
        "namespace": metadata.get("namespace"),
        "created": metadata.get("creationTimestamp"),
        "labels": metadata.get("labels") or {},
        "annotations": sorted((metadata.get("annotations") or {}).keys()),
        "owners": [
            f"{o.get('kind')}/{o.get('name')}"
            for o in metadata.get("ownerReferences") or []
            if isinstance(o, Mapping)
        ],
    }
    if isinstance(spec, Mapping):
        for key in ("replicas", "nodeName", "type", "clusterIP", "selector", "schedule"):
            if key in spec:
                summary[key] = spec[key]
        containers = _containers(spec)
        if containers:
            summary["containers"] = containers
    if isinstance(status, Mapping):
        for key in ("phase", "replicas", "readyReplicas", "availableReplicas", "updatedReplicas"):
            if key in status:
                summary[f"status.{key}"] = status[key]
        conditions = _conditions(status)
        if conditions:
            summary["conditions"] = conditions
        restarts = {
            s.get("name"): s.get("restartCount")
            for s in status.get("containerStatuses") or []
            if isinstance(s, Mapping)
        }
        if restarts:
            summary["restarts"] = restarts
    if obj.get("kind") in ("Secret", "ConfigMap"):
        summary["keys"] = sorted((obj.get("data") or {}).keys())
    summary["events"] = [event_line(e) for e in events]
    return summary


def event_line(event: Mapping[str, Any]) -> str:
    involved = event.get("involvedObject") or {}
    when = event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp")
    count = event.get("count")
    return (
        f"{when} {event.get('type', '')} {event.get('reason', '')} "
        f"{involved.get('kind', '')}/{involved.get('name', '')}"
        + (f" (x{count})" if count and count > 1 else "")
        + f": {event.get('message', '')}"
    )


def list_rows(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One short row per item of a list: name, namespace, and a state worth seeing."""
    rows = []
    for item in document.get("items") or []:
        if not isinstance(item, Mapping):
            continue
        metadata = item.get("metadata") or {}
        status = item.get("status") or {}
        row: dict[str, Any] = {"name": metadata.get("name")}
        if metadata.get("namespace"):
            row["namespace"] = metadata["namespace"]
        if isinstance(status, Mapping):
            if "phase" in status:
                row["phase"] = status["phase"]
            if "replicas" in status or "readyReplicas" in status:
                row["ready"] = f"{status.get('readyReplicas', 0)}/{status.get('replicas', 0)}"
        row["created"] = metadata.get("creationTimestamp")
        rows.append(row)
    return rows
