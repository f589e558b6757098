"""The Kubernetes tools ``eksgate mcp`` offers, each one or two requests through the gateway.

Nothing here decides anything: the gateway decides by policy, asks humans, masks and records.
A tool returns a dict whose ``outcome`` is ``ok`` or one of ``mcp_results.refusal``'s
(``approval_required`` with the approval id, who was asked and how to wait; ``denied`` with
the policy, rule and reason; ...). A request waiting for approval is remembered exactly as
sent, so ``approval_wait`` can send the same bytes once it is approved: a ``mode: once``
approval covers that exact request, and a second ``rollout_restart`` would carry a new
timestamp and be a new request.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from datetime import UTC, datetime
from typing import Any

from eksgate import mcp_results
from eksgate.api_client import CliError
from eksgate.gateway_client import Answer, ApiResource, GatewayClient, ResourceCatalog, Sent

MAX_TAIL_LINES = 2000
MAX_LOG_BYTES = 1024 * 1024
MAX_LIST_ITEMS = 500
MAX_WAIT_SECONDS = 900
POLL_SECONDS = 2.0
FIELD_MANAGER = "eksgate-mcp"
PATCH_TYPES = {
    "strategic": "application/strategic-merge-patch+json",
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
}
# Where exec will go when the gateway's exec route (POST /v1/exec/{cluster}) lands: a tool
# that posts the pod, container and command there and returns the gateway's bounded output,
# with the same refusal handling as every other tool (GatewayClient.send(..., api=True)).
EXEC_ROUTE = "/v1/exec/{cluster}"


def _bounded(value: int, low: int, high: int) -> int:
    return max(low, min(high, int(value)))


class KubeTools:
    def __init__(self, client: GatewayClient, catalog: ResourceCatalog | None = None) -> None:
        self.client = client
        self.catalog = catalog or ResourceCatalog(client)
        self._pending: dict[str, Sent] = {}
        self._lock = threading.Lock()

    # ---- plumbing ---------------------------------------------------------------------------

    def _resource(self, resource: str) -> ApiResource:
        return self.catalog.find(resource)

    def _outcome(self, sent: Sent, answer: Answer) -> dict[str, Any] | None:
        """None when the request was carried out; the structured refusal otherwise."""
        if answer.ok:
            return None
        result = mcp_results.refusal(answer.status, answer.json(), answer.text())
        if result["outcome"] == "approval_required":
            with self._lock:
                self._pending[result["approval_id"]] = sent
            result = mcp_results.with_approval(result, self._approval(result["approval_id"]))
        return result

    def _approval(self, approval_id: str) -> dict[str, Any] | None:
        answer = self.client.send(
            Sent("GET", f"/v1/approvals/{urllib.parse.quote(approval_id, safe='')}"), api=True
        )
        document = answer.json()
        return document if answer.ok and isinstance(document, dict) else None

    def _run(self, sent: Sent, accept: str = "application/json") -> tuple[Answer, dict | None]:
        answer = self.client.send(sent, accept=accept)
        return answer, self._outcome(sent, answer)

    def _write(self, sent: Sent) -> dict[str, Any]:
        answer, refused = self._run(sent)
        if refused:
            return refused
        document = answer.json()
        return {"outcome": "ok", "http_status": answer.status, "result": _brief(document)}

    # ---- reading ------------------------------------------------------------------------------

    def whoami(self) -> dict[str, Any]:
        answer = self.client.send(Sent("GET", "/v1/whoami"), api=True)
        document = answer.json()
        if answer.ok and isinstance(document, dict):
            return {"outcome": "ok", **document}
        return mcp_results.refusal(answer.status, document, answer.text())

    def list_resources(
        self,
        resource: str,
        namespace: str = "",
        label_selector: str = "",
        field_selector: str = "",
        limit: int = 100,
        full: bool = False,
    ) -> dict[str, Any]:
        kind = self._resource(resource)
        query = [("limit", str(_bounded(limit, 1, MAX_LIST_ITEMS)))]
        if label_selector:
            query.append(("labelSelector", label_selector))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        sent = Sent("GET", kind.path(namespace), tuple(query))
        answer, refused = self._run(sent)
        if refused:
            return refused
        document = answer.json() or {}
        result: dict[str, Any] = {
            "outcome": "ok",
            "resource": kind.qualified,
            "namespace": namespace or "(all)",
            "items": document.get("items") if full else mcp_results.list_rows(document),
        }
        if (document.get("metadata") or {}).get("continue"):
            result["truncated"] = f"more than {limit} items; narrow with a selector"
        return result

    def get_resource(
        self, resource: str, name: str, namespace: str = "", output: str = "json"
    ) -> dict[str, Any]:
        kind = self._resource(resource)
        answer, refused = self._run(Sent("GET", kind.path(namespace, name)))
        if refused:
            return refused
        document = answer.json()
        if output == "yaml":
            import yaml

            return {"outcome": "ok", "yaml": yaml.safe_dump(document, sort_keys=False)}
        return {"outcome": "ok", "object": document}

    def events(
        self, namespace: str, resource: str = "", name: str = "", limit: int = 50
    ) -> dict[str, Any]:
        selectors = []
        if resource:
            selectors.append(f"involvedObject.kind={self._resource(resource).kind}")
        if name:
            selectors.append(f"involvedObject.name={name}")
        query = [("limit", str(_bounded(limit, 1, MAX_LIST_ITEMS)))]
        if selectors:
            query.append(("fieldSelector", ",".join(selectors)))
        sent = Sent("GET", self._resource("events").path(namespace), tuple(query))
        answer, refused = self._run(sent)
        if refused:
            return refused
        items = (answer.json() or {}).get("items") or []
        return {"outcome": "ok", "events": [mcp_results.event_line(e) for e in items]}

    def describe(self, resource: str, name: str, namespace: str = "") -> dict[str, Any]:
        kind = self._resource(resource)
        answer, refused = self._run(Sent("GET", kind.path(namespace, name)))
        if refused:
            return refused
        obj = answer.json() or {}
        events = self.events(namespace, resource, name) if namespace else {"events": []}
        summary = mcp_results.describe(obj)
        summary["events"] = events.get("events", [])
        if events.get("outcome") not in (None, "ok"):
            summary["events_unavailable"] = events.get("reason") or events.get("message")
        return {"outcome": "ok", "summary": summary}

    def logs(
        self,
        pod: str,
        namespace: str,
        container: str = "",
        tail_lines: int = 200,
        limit_bytes: int = 65536,
        previous: bool = False,
        since_seconds: int = 0,
    ) -> dict[str, Any]:
        query = [
            ("tailLines", str(_bounded(tail_lines, 1, MAX_TAIL_LINES))),
            ("limitBytes", str(_bounded(limit_bytes, 1, MAX_LOG_BYTES))),
        ]
        if container:
            query.append(("container", container))
        if previous:
            query.append(("previous", "true"))
        if since_seconds > 0:
            query.append(("sinceSeconds", str(int(since_seconds))))
        path = self._resource("pods").path(namespace, pod, "log")
        answer, refused = self._run(Sent("GET", path, tuple(query)), accept="*/*")
        if refused:
            return refused
        text = answer.text()[: _bounded(limit_bytes, 1, MAX_LOG_BYTES)]
        return {"outcome": "ok", "pod": pod, "lines": text.count("\n"), "log": text}

    def can_i(
        self, verb: str, resource: str, namespace: str = "", name: str = "", subresource: str = ""
    ) -> dict[str, Any]:
        if resource.startswith("/"):
            spec: dict[str, Any] = {"nonResourceAttributes": {"path": resource, "verb": verb}}
        else:
            plural, _, group = resource.partition(".")
            if resource != "*" and not group:
                try:
                    found = self._resource(resource)
                    plural, group = found.name, found.group
                except CliError:
                    pass  # ask about the name as given; the policy matches names, not kinds
            spec = {
                "resourceAttributes": {
                    "namespace": namespace,
                    "verb": verb,
                    "group": group,
                    "resource": plural,
                    "subresource": subresource,
                    "name": name,
                }
            }
        review = {
            "kind": "SelfSubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "spec": spec,
        }
        sent = Sent(
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            body=json.dumps(review).encode(),
            content_type="application/json",
        )
        answer = self.client.send(sent)
        document = answer.json()
        if answer.ok and isinstance(document, dict) and isinstance(document.get("status"), dict):
            status = document["status"]
            return {
                "outcome": "ok",
                "allowed": bool(status.get("allowed")),
                "denied": bool(status.get("denied")),
                "approval_required": "approval required" in str(status.get("reason", "")),
                "reason": status.get("reason", ""),
            }
        return {
            "outcome": "unavailable",
            "message": "the gateway did not answer the access review: "
            + mcp_results.status_message(document, answer.text()[:500]),
        }

    # ---- changing ------------------------------------------------------------------------------

    def apply(
        self, manifest: str, namespace: str = "", dry_run_only: bool = False
    ) -> dict[str, Any]:
        """Create the object, or merge the manifest into it, after a server-side dry run."""
        from chalicelib.approvals.diff import object_diff

        obj = _parse_manifest(manifest)
        kind = self.catalog.for_kind(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        metadata = obj.setdefault("metadata", {})
        name = str(metadata.get("name") or "")
        target_namespace = (
            (namespace or str(metadata.get("namespace") or "")) if kind.namespaced else ""
        )
        if kind.namespaced and not target_namespace:
            return {"outcome": "error", "message": "a namespaced object needs a namespace"}
        if target_namespace:
            metadata["namespace"] = target_namespace
        current_answer = self.client.send(Sent("GET", kind.path(target_namespace, name)))
        if current_answer.status == 404:
            current = None
            sent = Sent(
                "POST",
                kind.path(target_namespace),
                body=json.dumps(obj).encode(),
                content_type="application/json",
            )
        elif current_answer.ok:
            current = current_answer.json()
            sent = Sent(
                "PATCH",
                kind.path(target_namespace, name),
                body=json.dumps(obj).encode(),
                content_type=PATCH_TYPES["merge"],
            )
        else:
            return (
                self._outcome(Sent("GET", kind.path(target_namespace, name)), current_answer) or {}
            )
        trial = Sent(
            sent.method,
            sent.path,
            (("dryRun", "All"), ("fieldManager", FIELD_MANAGER)),
            sent.body,
            sent.content_type,
        )
        answer, refused = self._run(trial)
        if refused:
            return {**refused, "stage": "dry run"}
        diff = object_diff(current, answer.json() or {})
        if dry_run_only:
            return {"outcome": "dry_run", "diff": diff}
        real = Sent(
            sent.method, sent.path, (("fieldManager", FIELD_MANAGER),), sent.body, sent.content_type
        )
        return {**self._write(real), "diff": diff}

    def patch(
        self,
        resource: str,
        name: str,
        patch: str,
        namespace: str = "",
        patch_type: str = "strategic",
    ) -> dict[str, Any]:
        if patch_type not in PATCH_TYPES:
            return {
                "outcome": "error",
                "message": f"patch_type must be one of {sorted(PATCH_TYPES)}",
            }
        try:
            body = json.loads(patch)
        except ValueError as exc:
            return {"outcome": "error", "message": f"the patch is not JSON: {exc}"}
        kind = self._resource(resource)
        return self._write(
            Sent(
                "PATCH",
                kind.path(namespace, name),
                (("fieldManager", FIELD_MANAGER),),
                json.dumps(body).encode(),
                PATCH_TYPES[patch_type],
            )
        )

    def scale(
        self, name: str, namespace: str, replicas: int, resource: str = "deployments"
    ) -> dict[str, Any]:
        kind = self._resource(resource)
        body = json.dumps({"spec": {"replicas": int(replicas)}}).encode()
        return self._write(
            Sent(
                "PATCH",
                kind.path(namespace, name, "scale"),
                (("fieldManager", FIELD_MANAGER),),
                body,
                PATCH_TYPES["merge"],
            )
        )

    def rollout_restart(
        self, name: str, namespace: str, resource: str = "deployments"
    ) -> dict[str, Any]:
        kind = self._resource(resource)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "spec": {
                "template": {
                    "metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": now}}
                }
            }
        }
        return self._write(
            Sent(
                "PATCH",
                kind.path(namespace, name),
                (("fieldManager", FIELD_MANAGER),),
                json.dumps(body).encode(),
                PATCH_TYPES["strategic"],
            )
        )

    def delete(
        self, resource: str, name: str, namespace: str = "", propagation: str = "Background"
    ) -> dict[str, Any]:
        if propagation not in ("Background", "Foreground", "Orphan"):
            return {"outcome": "error", "message": "propagation: Background, Foreground or Orphan"}
        kind = self._resource(resource)
        return self._write(
            Sent("DELETE", kind.path(namespace, name), (("propagationPolicy", propagation),))
        )

    # ---- approvals ------------------------------------------------------------------------------

    def approval_status(self, approval_id: str) -> dict[str, Any]:
        approval = self._approval(approval_id)
        if approval is None:
            return {"outcome": "not_found", "message": f"no approval {approval_id} of yours"}
        return {"outcome": "ok", "approval": approval}

    def approval_wait(
        self, approval_id: str, timeout_seconds: int = 300, send_when_approved: bool = True
    ) -> dict[str, Any]:
        deadline = time.monotonic() + _bounded(timeout_seconds, 0, MAX_WAIT_SECONDS)
        while True:
            approval = self._approval(approval_id)
            if approval is None:
                return {"outcome": "not_found", "message": f"no approval {approval_id} of yours"}
            status = approval.get("status")
            if status != "pending":
                break
            if time.monotonic() >= deadline:
                return {"outcome": "still_pending", "approval": approval}
            time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
        if status != "approved":
            return {"outcome": f"approval_{status}", "approval": approval}
        with self._lock:
            sent = self._pending.pop(approval_id, None) if send_when_approved else None
        if sent is None:
            return {
                "outcome": "approved",
                "approval": approval,
                "next": "make the same request again (the same tool with the same arguments)",
            }
        return {**self._write(sent), "approval_id": approval_id}


def _parse_manifest(manifest: str) -> dict[str, Any]:
    import yaml

    try:
        documents = [d for d in yaml.safe_load_all(manifest) if d is not None]
    except yaml.YAMLError as exc:
        raise CliError(f"the manifest is not YAML or JSON: {exc}") from exc
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise CliError("apply takes one object (a mapping with apiVersion, kind, metadata)")
    obj = documents[0]
    if (
        not obj.get("apiVersion")
        or not obj.get("kind")
        or not (obj.get("metadata") or {}).get("name")
    ):
        raise CliError("the manifest needs apiVersion, kind and metadata.name")
    return obj


def _brief(document: Any) -> Any:
    """The part of a write's answer worth showing: the object's identity and state."""
    if not isinstance(document, dict):
        return document
    if document.get("kind") == "Status":
        return {k: document.get(k) for k in ("status", "message", "details")}
    metadata = document.get("metadata") or {}
    return {
        "kind": document.get("kind"),
        "name": metadata.get("name"),
        "namespace": metadata.get("namespace"),
        "resourceVersion": metadata.get("resourceVersion"),
        "spec": document.get("spec"),
    }
